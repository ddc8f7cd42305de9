"""`workbench.profile.machine`: what every latency figure records about the machine it was measured on."""

import platform

from workbench.profile.machine import machine, machine_text


def test_machine_has_every_key_and_one_line_text():
    m = machine()
    assert set(m) == {"cpu", "cores", "os", "onnxruntime", "torch"}
    assert m["os"] == platform.system() and isinstance(m["cores"], int) and m["cores"] >= 1
    assert m["cpu"] and m["onnxruntime"] != "not installed" and m["torch"] != "not installed"
    text = machine_text(m)
    assert "\n" not in text and text.startswith(m["cpu"])
    assert f"{m['cores']} cores" in text and f"onnxruntime {m['onnxruntime']}" in text and f"torch {m['torch']}" in text


def test_machine_text_of_old_or_partial_records():
    assert machine_text(None) == machine_text({}) == machine_text("a string") == "machine not recorded"
    assert machine_text({"cpu": "Some\nCPU", "cores": 4}) == "Some CPU, 4 cores, ?, onnxruntime ?, torch ?"
