import subprocess
import sys


def test_import_is_light():
    code = (
        "import sys, germinate_nb\n"
        "heavy = {'matplotlib', 'ipywidgets', 'IPython', 'dask', 'distributed'}\n"
        "heavy &= set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_public_names_are_exported():
    import germinate_nb

    for name in germinate_nb.__all__:
        assert hasattr(germinate_nb, name), name
