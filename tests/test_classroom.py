"""A class session: codes, the teacher's key, limits and expiry (s2m.classroom), and the app's handlers that carry a
student's reading to the teacher's class map."""

import pytest

from s2m.classroom import CODE_ALPHABET, CODE_LENGTH, ClassError, ClassPoint, Classroom, normalise_code


def _point(name="Ana", reading="happy", member="m1", recording="r1", model="audio/triplet", v=0.8):
    return ClassPoint(
        name=name,
        reading=reading,
        valence=v,
        arousal=0.7,
        x=1.0,
        y=2.0,
        model=model,
        member=member,
        recording=recording,
    )


def test_codes_are_short_unambiguous_and_typed_forgivingly():
    room = Classroom()
    code, key = room.start()
    assert len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET) and not set(code) & set("0O1I")
    assert len(key) >= 20 and key != code
    typed = f" {code[:3].lower()}-{code[3:].lower()} "
    assert normalise_code(typed) == code and room.join(typed) == code
    for bad in ("", None, "ABC", "ABCDEFG", "ABCD0O", "ÄBCDEF"):
        with pytest.raises(ClassError, match="class code has 6"):
            room.join(bad)
    unused = next(c * CODE_LENGTH for c in CODE_ALPHABET if c * CODE_LENGTH != code)
    with pytest.raises(ClassError, match="no class"):
        room.join(unused)


def test_only_the_teachers_key_sees_clears_or_ends_a_class():
    room = Classroom()
    code, key = room.start()
    other, other_key = room.start()
    room.add(code, _point())
    for wrong in ("", None, other_key, key[:-1]):
        for action in (room.points, room.version, room.clear, room.end):
            with pytest.raises(ClassError, match="Only the teacher"):
                action(code, wrong)
    assert [p.name for p in room.points(code, key)] == ["Ana"]
    assert room.points(other, other_key) == []  # nothing of one class is visible in another
    room.clear(code, key)
    assert room.points(code, key) == [] and room.join(code) == code  # cleared, still running
    room.end(code, key)
    with pytest.raises(ClassError, match="no class"):
        room.add(code, _point())
    with pytest.raises(ClassError, match="no class"):
        room.points(code, key)


def test_the_same_recording_moves_its_point_and_names_are_cleaned():
    room = Classroom()
    code, key = room.start()
    v0 = room.version(code, key)
    room.add(code, _point(name="<b>Ana</b>\x07"))
    room.add(code, _point(reading="calm", model="audio/triplet_emosim"))  # same recording, another model: moves
    room.add(code, _point(recording="r2"))  # a second recording: a second point
    room.add(code, _point(member="m2"))  # another device's same-named recording: its own point
    points = room.points(code, key)
    assert [(p.name, p.reading, p.recording, p.member) for p in points] == [
        ("Ana", "calm", "r1", "m1"),
        ("Ana", "happy", "r2", "m1"),
        ("Ana", "happy", "r1", "m2"),
    ]
    assert room.version(code, key) == v0 + 4
    with pytest.raises(ClassError, match="no position"):
        room.add(code, _point(v=float("nan")))
    with pytest.raises(ClassError, match="no emotion"):
        room.add(code, _point(reading=""))
    assert len(room.points(code, key)) == 3


def test_limits_keep_a_public_server_safe_and_idle_classes_end():
    now = [0.0]
    room = Classroom(max_classes=2, max_points=3, idle_seconds=100, clock=lambda: now[0])
    code, key = room.start()
    room.start()
    with pytest.raises(ClassError, match="as many classes"):
        room.start()
    for i in range(5):
        room.add(code, _point(recording=f"r{i}"))
    assert [p.recording for p in room.points(code, key)] == ["r2", "r3", "r4"]  # the newest kept
    now[0] = 150.0  # the second class has been idle for 150 s, the first was used at 0 s too
    assert len(room) == 0
    fresh, fresh_key = room.start()
    now[0] = 200.0
    room.add(fresh, _point())
    now[0] = 290.0
    assert room.join(fresh) == fresh  # its last reading was 90 s ago
    now[0] = 301.0
    with pytest.raises(ClassError, match="no class"):
        room.points(fresh, fresh_key)


@pytest.fixture(scope="module")
def engine():
    from s2m.search import Engine

    return Engine()


def test_a_students_reading_reaches_the_teachers_class_tab(engine, monkeypatch):
    import app
    from tests.test_app import EXAMPLES

    monkeypatch.setattr(app, "CLASSES", Classroom())
    monkeypatch.setattr(app, "ENGINE", engine)
    teacher, t_member, card, _, _, _, drawn, status = app.start_class("https://10.0.0.5:7860/?x=1#top", None)
    code = teacher["code"]
    assert f"https://10.0.0.5:7860/?class={code}" in card and 'src="data:image/svg+xml' in card and code in status
    assert app.start_class("https://10.0.0.5:7860/", teacher)[0] == teacher  # pressing again: the same class
    with pytest.raises(app.gr.Error, match="address"):
        app.start_class("javascript:alert(1)", None)

    student, said, _ = app.join_class(code.lower(), None)
    assert student["code"] == code and student["id"] != t_member["id"] and code in said
    with pytest.raises(app.gr.Error, match="no class"):
        app.join_class("ZZZZZZ" if code != "ZZZZZZ" else "YYYYYY", None)
    voice = str(EXAMPLES / "happy.wav")
    result = engine.search(audio=voice, framework="triplet").to_dict()
    top = max(result["emotions"], key=result["emotions"].get)
    sent = app.share(result, "Ana", student, app.query_id(voice, None), "audio", "Triplet", None)
    assert sent.startswith("✅") and f"Ana — {top}" in sent
    assert app.share(result, "Ana", None, "", "audio", "Triplet", None) == app.gr.skip()  # in no class: not sent
    assert len(app.CLASSES.points(code, teacher["key"])) == 1

    plane, picture, roster, version = app.class_view(teacher, drawn, False, "audio", "Triplet", None)
    for fig in (plane, picture):
        marks = [t for t in fig.data if t.name == "the class (☆)"]
        assert [t for m in marks for t in m.text] == [f"Ana — {top}"] and code in fig.layout.title.text
    assert f"1 reading(s) from 1 device(s): 1 {top}" in roster
    skipped = app.class_view(teacher, version, False, "audio", "Triplet", None)
    assert all(s == app.gr.skip() for s in skipped)  # nothing new: the teacher's screen is not redrawn
    hidden = app.class_redraw(teacher, True, "audio", "Triplet", None)[0]
    assert [t for m in hidden.data if m.name == "the class (☆)" for t in m.text] == [top]  # names hidden
    other_model = app.class_redraw(teacher, False, "audio", "Triplet + EmoSim", None)
    assert not [t for t in other_model[1].data if t.name == "the class (☆)"]  # another model's map: not on it
    assert "another model" in other_model[2]

    ended = app.end_class(teacher, t_member)
    assert ended[0] is None and ended[1] is None and "ended" in ended[5]
    late = app.share(result, "Ana", student, "r", "audio", "Triplet", None)
    assert late.startswith("⚠️ Not on the class map") and "no class" in late  # the search itself stands
