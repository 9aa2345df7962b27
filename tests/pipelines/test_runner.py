"""The launcher's exit: the job's exit code, with the work Python does at exit still done."""
import os
import subprocess
import sys
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_exit_process_joins_threads_runs_atexit_flushes_and_returns_the_code(tmp_path):
    marker = tmp_path / "thread-done"
    script = textwrap.dedent(f"""
        import atexit, sys, threading, time
        from pipelines.runner import exit_process
        atexit.register(lambda: print("atexit ran"))
        def late():
            time.sleep(0.5)
            open({str(marker)!r}, "w").write("done")
        threading.Thread(target=late).start()
        print("buffered", end="")  # no newline: still in the buffer when exit_process runs
        sys.stderr.write("to stderr")
        exit_process(3)
        print("never")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out.stderr
    assert out.stdout == "bufferedatexit ran\n" and out.stderr == "to stderr"
    assert marker.read_text() == "done"  # the non-daemon thread finished before the process left
