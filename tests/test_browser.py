"""The real page in headless Chromium (Debian's package) via Playwright: an example query, and a fake microphone.

Skips with a reason when no Chromium binary is found; CI installs one (see .ci/run).
"""

import re
import shutil

import numpy as np
import pytest
import soundfile as sf

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found (apt-get install chromium)"),
]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


@pytest.fixture(scope="module")
def url():
    import app

    demo = app.create(warm=False)
    _, local_url, _ = demo.launch(
        prevent_thread_lock=True, quiet=True, head=app.HEAD, allowed_paths=[str(p) for p in app._ALLOWED]
    )
    yield local_url
    demo.close()


def _page(playwright, url, extra_args=()):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS + list(extra_args))
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    context.grant_permissions(["microphone"], origin=url.rstrip("/"))
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#submit", timeout=60_000)
    return browser, page


def _microphone_file(tmp_path, example: str):
    """A WAV for Chromium's fake microphone: the example voice, padded with silence (Chromium loops the file)."""
    from s2m.audio import load_audio
    from tests.test_app import EXAMPLES

    voice = load_audio(str(EXAMPLES / f"{example}.wav"), trim_silence=False).samples
    wav = tmp_path / "mic.wav"
    sf.write(wav, np.concatenate([voice, np.zeros(48_000, np.float32)]), 16_000, subtype="PCM_16")
    return wav


def _record(page) -> None:
    """Record 3.5 s with the page's microphone button, then stop."""
    audio = page.locator("#query-audio")
    audio.get_by_role("button", name="Record", exact=True).click()
    page.wait_for_timeout(3_500)
    audio.get_by_role("button", name="Stop", exact=True).click()


def _upload(page, elem_id: str, path) -> None:
    """Put a file into the gr.Audio with ``elem_id`` through its upload button and the file chooser."""
    audio = page.locator(f"#{elem_id}")
    audio.get_by_label("Upload file").click()
    with page.expect_file_chooser() as chooser:
        audio.locator("button, [role=button], .upload-container, label").filter(has_text="Drop Audio").first.click()
    chooser.value.set_files(str(path))


def _submit_and_check(page, tmp_path, name):
    submit = page.locator("#submit")
    page.wait_for_function("() => !document.querySelector('#submit').disabled", timeout=30_000)
    submit.click()
    page.get_by_text("#1 ·").first.wait_for(timeout=60_000)  # the first result's label
    players = page.locator("[id^=result-]").filter(has_text=re.compile(r"#\d+ · "))
    assert players.count() == 5
    # the valence-arousal plane is the first tab: the star trace's legend entry, the speech emotions beside the music
    page.locator("#va-plane").get_by_text("your query").first.wait_for(timeout=30_000)
    assert page.locator("#va-plane").get_by_text("voices (×)").count() >= 1
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    return page.locator("#emotions").inner_text()


def test_example_query_in_browser(url, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = _page(p, url)
        page.get_by_text("angry", exact=True).first.click()  # the example button
        emotions = _submit_and_check(page, tmp_path, "example")
        # a real actor no model trained on, read as it comes: the reading is not asserted (the model card gives the
        # test accuracy), only that the emotion panel shows a distribution over the speech emotions
        assert (
            sum(
                label in emotions
                for label in ("angry", "disgust", "happy", "sad", "calm", "neutral", "fearful", "surprised")
            )
            >= 2
        )
        page.get_by_label("fusion").check()  # same recording, another model: re-runs without re-recording
        page.locator("#heard strong", has_text="Transcript (English):").wait_for(timeout=60_000)  # with its language
        assert "talking by the door" in page.locator("#heard").inner_text().lower()  # RAVDESS statement 1
        browser.close()


def test_fake_microphone_records_and_retrieves(url, tmp_path):
    from playwright.sync_api import sync_playwright

    wav = _microphone_file(tmp_path, "sad")
    with sync_playwright() as p:
        browser, page = _page(p, url, [f"--use-file-for-fake-audio-capture={wav}"])
        _record(page)
        _submit_and_check(page, tmp_path, "microphone")
        browser.close()


def test_bad_upload_shows_a_visible_error_and_page_keeps_working(url, tmp_path):
    from playwright.sync_api import sync_playwright

    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(32_000, np.float32), 16_000)
    with sync_playwright() as p:
        browser, page = _page(p, url)
        _upload(page, "query-audio", silent)
        page.wait_for_function("() => !document.querySelector('#submit').disabled", timeout=30_000)
        page.locator("#submit").click()
        message = page.get_by_text("The audio is silent").first
        message.wait_for(timeout=30_000)  # shown on the audio input
        assert message.is_visible()
        box, voice = message.bounding_box(), page.locator("#query-audio").get_by_text("Your voice").bounding_box()
        assert box["y"] + box["height"] <= voice["y"]  # above the input's label and waveform, not covering them
        page.screenshot(path=str(tmp_path / "error.png"))
        page.get_by_text("sad", exact=True).first.click()  # an example still works afterwards
        _submit_and_check(page, tmp_path, "after-error")
        browser.close()


def test_enter_searches_typed_text_is_labelled_and_a_failed_switch_clears_results(url, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = _page(p, url)
        page.get_by_label("text", exact=True).check()
        box = page.locator("#query-text textarea")
        box.fill("Get out of here right now, I am furious!")
        box.press("Enter")
        page.get_by_text("#1 ·").first.wait_for(timeout=60_000)
        heard = page.locator("#heard").inner_text()
        assert "You typed:" in heard and "furious" in heard and "Transcript" not in heard
        assert "Emotion in your words" in page.locator("#emotions").inner_text()
        page.screenshot(path=str(tmp_path / "typed.png"), full_page=True)
        page.get_by_label("audio", exact=True).check()  # typed text cannot drive the audio model
        page.get_by_text("The audio model needs a recording").first.wait_for(timeout=30_000)
        page.wait_for_function("() => !document.querySelector('#heard').innerText.includes('You typed')")
        assert page.get_by_text("#1 ·").count() == 0  # the text model's results are not left under the audio model
        page.screenshot(path=str(tmp_path / "switched.png"), full_page=True)
        browser.close()


def test_one_result_clip_plays_at_a_time(url):
    """Gradio's players sit in shadow roots; starting a second clip must pause the first."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = _page(p, url, ["--autoplay-policy=no-user-gesture-required"])
        page.evaluate("""() => { window.__media = new Set(); const play = HTMLMediaElement.prototype.play;
            HTMLMediaElement.prototype.play = function (...a) { window.__media.add(this); return play.apply(this, a); };
        }""")  # records every element that is asked to play (the page's own rule stays underneath)
        page.get_by_text("happy", exact=True).first.click()
        page.wait_for_function("() => !document.querySelector('#submit').disabled", timeout=30_000)
        page.locator("#submit").click()
        page.get_by_text("#2 ·").first.wait_for(timeout=60_000)
        for i in (0, 1):
            page.locator(f"#result-{i}").get_by_role("button", name="Play", exact=True).click()
            page.wait_for_timeout(600)
        states = page.evaluate("() => [...window.__media].map((a) => a.paused)")
        assert len(states) == 2 and states.count(False) == 1, states
        browser.close()


def test_a_class_on_one_picture_on_a_phone(url, tmp_path):
    """Two students with names on a phone-sized page: the page scrolls to each answer, both stay on the map as
    labelled markers, the map can be cleared, and Triplet vs EmoSim shows the same query side by side."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
        page.goto(url)
        page.wait_for_selector("#submit", timeout=60_000)
        for name, example in (("Ana", "happy"), ("Ben", "sad")):
            page.locator("#query-name input, #query-name textarea").first.fill(name)
            page.get_by_text(example, exact=True).first.click()
            page.wait_for_function("() => !document.querySelector('#submit').disabled", timeout=30_000)
            page.locator("#submit").click()
            page.get_by_text("#1 ·").first.wait_for(timeout=60_000)
        page.wait_for_function(
            "() => { const b = document.querySelector('#heard').getBoundingClientRect();"
            " return b.top >= -5 && b.top < window.innerHeight; }",
            timeout=10_000,
        )
        page.screenshot(path=str(tmp_path / "phone-answer.png"))
        plane = page.locator("#va-plane")
        plane.get_by_text("Ana — ").first.wait_for(timeout=30_000)  # the first student, now an earlier query
        page.screenshot(path=str(tmp_path / "phone-class.png"), full_page=True)
        plane.screenshot(path=str(tmp_path / "phone-plane.png"))
        tabs = [
            page.get_by_role("tab", name=n)
            for n in ("Valence–arousal plane", "Map of the joint space", "Triplet vs EmoSim", "Class")
        ]
        assert all(t.is_visible() for t in tabs)  # every tab reachable by its name on a phone (no "…" menu)
        star = plane.locator(".scatterlayer .trace").last.locator("path.point").last.bounding_box()
        frame = plane.bounding_box()
        assert frame["x"] <= star["x"] and star["x"] + star["width"] <= frame["x"] + frame["width"]  # not clipped
        page.locator("#clear-history").click()
        plane.get_by_text("your query").first.wait_for(state="detached", timeout=30_000)
        assert plane.get_by_text("Ana — ").count() == 0
        page.get_by_text("#1 ·").first.wait_for(state="hidden", timeout=10_000)  # the results go too
        assert "%" not in page.locator("#emotions").inner_text() and not page.locator("#heard").inner_text().strip()
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.get_by_role("tab", name="Triplet vs EmoSim").click()
        page.locator("#compare").click()
        for framework in ("triplet", "triplet_emosim"):
            page.locator(f"#compare-{framework}").get_by_text("reads ").first.wait_for(timeout=60_000)
        assert "songs" in page.locator("#compare-note").inner_text()  # how far apart the two answers are
        page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
        browser.close()


def test_calibrating_runs_the_query_on_screen_again(url, tmp_path):
    from playwright.sync_api import sync_playwright

    from app import EXAMPLE_DIR

    with sync_playwright() as p:
        browser, page = _page(p, url)
        page.get_by_text("happy", exact=True).first.click()
        _submit_and_check(page, tmp_path, "before")
        notices = page.locator("#notices")
        assert "neutral voice" not in notices.inner_text()  # an example voice is read as it comes
        page.get_by_text("Read relative to my neutral voice").click()
        _upload(page, "reference-audio", EXAMPLE_DIR / "neutral.wav")
        page.wait_for_timeout(1000)
        page.locator("#calibrate").click()
        page.get_by_text("Calibrated to your voice").first.wait_for(timeout=30_000)
        # the query on screen ran again with the user's reference, and says so
        page.wait_for_function(
            "() => document.querySelector('#notices').innerText.includes('neutral voice')", timeout=60_000
        )
        page.get_by_text("#1 ·").first.wait_for(timeout=60_000)
        page.screenshot(path=str(tmp_path / "calibrated.png"), full_page=True)
        browser.close()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
def test_spoken_german_is_transcribed_in_german_and_read_by_the_text_model(url, tmp_path):
    import subprocess

    from playwright.sync_api import sync_playwright

    spoken = tmp_path / "wuetend.wav"
    subprocess.run(
        ["espeak-ng", "-v", "de", "-w", str(spoken), "Verschwinde sofort von hier, ich bin so wütend!"], check=True
    )
    with sync_playwright() as p:
        browser, page = _page(p, url)
        page.get_by_label("text", exact=True).check()
        _upload(page, "query-audio", spoken)
        page.wait_for_function("() => !document.querySelector('#submit').disabled", timeout=30_000)
        page.locator("#submit").click()
        page.locator("#heard strong", has_text="Transcript (German):").wait_for(timeout=90_000)
        # German words (espeak-ng's voice is heard imperfectly: "… von dir, ich bin verwütend" at a 10-s window)
        assert {"ich", "bin", "von"} <= set(page.locator("#heard").inner_text().lower().replace(",", " ").split())
        page.get_by_text("#1 ·").first.wait_for(timeout=60_000)
        assert "Emotion in your words" in page.locator("#emotions").inner_text()
        page.screenshot(path=str(tmp_path / "german.png"), full_page=True)
        browser.close()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
def test_spoken_korean_reaches_the_fusion_model_in_hangul(url, tmp_path):
    """A Korean speaker end to end: spoken Korean (espeak-ng, slow) with "Korean" chosen -> a Hangul transcript
    labelled Korean -> the fusion model reads voice and words (its text reader knows Korean) -> music."""
    import subprocess

    from playwright.sync_api import sync_playwright

    spoken = tmp_path / "haengbok.wav"
    subprocess.run(
        ["espeak-ng", "-v", "ko", "-s", "90", "-w", str(spoken), "드디어 취직했어요. 정말 너무 행복해요."], check=True
    )
    with sync_playwright() as p:
        browser, page = _page(p, url)
        page.get_by_label("fusion", exact=True).check()
        language = page.locator("#query-language input")
        language.fill("Korean")
        page.get_by_role("option", name="Korean").click()
        _upload(page, "query-audio", spoken)
        page.wait_for_function("() => !document.querySelector('#submit').disabled", timeout=30_000)
        page.locator("#submit").click()
        page.locator("#heard strong", has_text="Transcript (Korean):").wait_for(timeout=90_000)
        assert "행복" in page.locator("#heard").inner_text()
        page.get_by_text("#1 ·").first.wait_for(timeout=60_000)
        assert "Emotion in your voice and words" in page.locator("#emotions").inner_text()
        page.screenshot(path=str(tmp_path / "korean-fusion.png"), full_page=True)
        page.get_by_label("text", exact=True).check()  # the same recording read by its words alone: happy music
        page.locator("#emotions", has_text="Emotion in your words").wait_for(timeout=90_000)
        page.get_by_text("Your words read as happy").first.wait_for(timeout=30_000)  # the results' "why"
        lines = [line.strip() for line in page.locator("#emotions").inner_text().splitlines() if line.strip()]
        assert lines[1] == "happy", lines  # the reading's headline, under the label's title
        assert "Transcript (Korean):" in page.locator("#heard").inner_text()
        page.screenshot(path=str(tmp_path / "korean-text.png"), full_page=True)
        browser.close()


def _lan_address() -> str | None:
    """This machine's address on its network (not loopback), or None: where a classroom's students reach the app."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else address


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed (apt-get install openssl)")
def test_microphone_works_over_https_on_the_network_with_a_self_signed_certificate(tmp_path):
    """What a class does (README "In a class"): one openssl command makes a certificate, the app serves HTTPS on the
    machine's network address, a student's browser accepts the certificate and records with its microphone."""
    import subprocess
    import sys

    from playwright.sync_api import sync_playwright

    host = _lan_address()
    if host is None:
        pytest.skip("this machine has no network address besides loopback")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=s2m",
            "-addext",
            f"subjectAltName=IP:{host}",
        ],
        check=True,
        capture_output=True,
    )
    port = 7893
    server = subprocess.Popen(
        [
            sys.executable,
            "app.py",
            "--host",
            host,
            "--port",
            str(port),
            "--ssl-certfile",
            str(cert),
            "--ssl-keyfile",
            str(key),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wav = _microphone_file(tmp_path, "happy")
    url = f"https://{host}:{port}/"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=ARGS + ["--ignore-certificate-errors", f"--use-file-for-fake-audio-capture={wav}"],
            )
            context = browser.new_context(viewport={"width": 1400, "height": 1800})
            context.grant_permissions(["microphone"], origin=url.rstrip("/"))
            page = context.new_page()
            for _ in range(90):  # the app starts in a few seconds
                try:
                    page.goto(url)
                    break
                except Exception:  # noqa: BLE001 - not listening yet
                    page.wait_for_timeout(1_000)
            page.wait_for_selector("#submit", timeout=60_000)
            assert page.evaluate("window.isSecureContext") and page.evaluate("location.protocol") == "https:"
            _record(page)
            _submit_and_check(page, tmp_path, "https-microphone")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_class_session_joins_a_students_phone_to_the_teachers_screen(url, tmp_path):
    """Two devices: the teacher (laptop, 1366×768) starts a class and shows its code, link and QR code; a student
    (phone, 390×844) opens the link, types a name, sends an example voice; the teacher's class tab shows the
    student's star with name and reading within seconds, hides the names, and ends the class."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        teacher = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
        teacher.goto(url)
        teacher.wait_for_selector("#submit", timeout=60_000)
        for example in ("angry", "surprised"):  # the example voices show without scrolling on a 1366×768 laptop
            box = teacher.get_by_text(example, exact=True).first.bounding_box()
            assert box and box["y"] + box["height"] <= 768, (example, box)
        teacher.locator("#class-session").get_by_text("Class session").first.click()
        teacher.locator("#start-class").click()
        card = teacher.locator("#class-card")
        card.wait_for(timeout=30_000)
        code = card.locator("b").inner_text().strip()
        link = card.locator("a").get_attribute("href")
        assert len(code) == 6 and link.endswith(f"?class={code}") and link.startswith(url.rstrip("/"))
        assert card.locator("img[alt^='QR code']").bounding_box()["width"] >= 150  # the QR code is drawn
        teacher.locator("#class-roster", has_text="Waiting for the first voice").wait_for(timeout=30_000)
        teacher.locator("#class-va").get_by_text(f"Class {code} on the valence").wait_for(timeout=30_000)  # drawn
        teacher.screenshot(path=str(tmp_path / "class-teacher-start.png"), full_page=True)

        student = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
        student.goto(link)
        student.wait_for_selector("#submit", timeout=60_000)
        student.locator("#class-status", has_text=f"You are in class {code}").wait_for(timeout=30_000)
        student.locator("#query-name input, #query-name textarea").first.fill("Ana")
        student.get_by_text("happy", exact=True).first.click()  # an example voice
        student.wait_for_function("() => !document.querySelector('#submit').disabled", timeout=30_000)
        student.locator("#submit").click()
        student.locator("#class-status", has_text=f"Sent to class {code}").wait_for(timeout=90_000)
        reading = student.locator("#class-status").inner_text().split("Ana — ")[1].strip(" .")
        student.screenshot(path=str(tmp_path / "class-student.png"), full_page=True)

        teacher.locator("#class-roster", has_text="1 reading(s) from 1 device(s)").wait_for(timeout=30_000)
        plane = teacher.locator("#class-va")
        plane.get_by_text(f"Ana — {reading}").first.wait_for(timeout=30_000)
        assert plane.get_by_text("the class (☆)").count() >= 1
        teacher.screenshot(path=str(tmp_path / "class-teacher.png"), full_page=True)
        shot = tmp_path / "class-plane.png"
        plane.screenshot(path=str(shot))
        assert shot.stat().st_size > 20_000
        teacher.reload()  # a reload mid-lesson keeps the class (its key stays in the teacher's browser)
        teacher.wait_for_selector("#submit", timeout=60_000)
        teacher.get_by_role("tab", name="Class").click()
        teacher.locator("#class-roster", has_text="1 reading(s) from 1 device(s)").wait_for(timeout=30_000)
        assert teacher.locator("#class-card b").inner_text().strip() == code
        teacher.locator("#hide-names input").check()
        teacher.wait_for_function(
            "() => !document.querySelector('#class-va').innerText.includes('Ana')", timeout=30_000
        )
        assert plane.get_by_text(reading, exact=True).count() >= 1  # the reading stays, the name goes
        teacher.locator("#end-class").click()
        teacher.locator("#class-status", has_text="Class ended").wait_for(timeout=30_000)
        student.locator("#submit").click()  # the student searches again after the class ended
        student.locator("#class-status", has_text="Not on the class map").wait_for(timeout=90_000)
        browser.close()
