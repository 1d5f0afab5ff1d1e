"""Atomic file writes: a temporary file beside the target, then a rename over it."""
import os
import tempfile


def atomic_write(path, write, prefix=None):
    """Call write(tmp_path), then rename tmp_path over `path` (mode 0666 & ~umask).

    The temporary file is `prefix` + random characters (default "." + the file's name + "."),
    in the same folder, so the rename is atomic. Nothing is left behind on failure.
    """
    folder = os.path.dirname(path) or "."
    if prefix is None:
        prefix = "." + os.path.basename(path) + "."
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=folder)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text, prefix=None):
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    atomic_write(path, write, prefix)
