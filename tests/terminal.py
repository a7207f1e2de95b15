"""Run regfs in a real pseudo-terminal and read back the screen a user would see.

``PtySession`` starts a process with stdin, stdout and stderr on a pty (so rich sees a
terminal and draws its live progress display), feeds it keystrokes, and collects the raw
output. ``Screen`` replays that output the way a VT100-style terminal does for the sequences
rich and our prompts use (carriage return, line feed, cursor up/down/column, erase in line
and display, cursor save/restore); any other escape sequence (colours, cursor visibility) is
ignored. What it returns is the final screen: the text a user reads.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time
from collections.abc import Sequence

_CSI = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z@])")
_OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


class Screen:
    def __init__(self, width: int = 80) -> None:
        self.width = width
        self.lines: list[list[str]] = [[]]
        self.row = 0
        self.col = 0
        self.saved = (0, 0)

    def _line(self) -> list[str]:
        while len(self.lines) <= self.row:
            self.lines.append([])
        return self.lines[self.row]

    def _put(self, ch: str) -> None:
        if self.col >= self.width:  # auto-wrap
            self.row += 1
            self.col = 0
        line = self._line()
        while len(line) < self.col:
            line.append(" ")
        if self.col < len(line):
            line[self.col] = ch
        else:
            line.append(ch)
        self.col += 1

    def feed(self, text: str) -> None:
        text = _OSC.sub("", text)
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\x1b":
                m = _CSI.match(text, i)
                if m is None:  # e.g. ESC 7 / ESC 8 (save/restore), or a lone ESC
                    nxt = text[i + 1 : i + 2]
                    if nxt == "7":
                        self.saved = (self.row, self.col)
                    elif nxt == "8":
                        self.row, self.col = self.saved
                    i += 2
                    continue
                self._csi(m.group(1), m.group(2))
                i = m.end()
                continue
            if ch == "\r":
                self.col = 0
            elif ch == "\n":
                self.row += 1
                self._line()
            elif ch == "\b":
                self.col = max(0, self.col - 1)
            elif ch == "\t":
                self.col = (self.col // 8 + 1) * 8
            elif ch >= " ":
                self._put(ch)
            i += 1

    def _csi(self, params: str, final: str) -> None:
        if params.startswith("?"):
            return  # private modes: cursor visibility and the like
        nums = [int(p) if p else 0 for p in params.split(";")] if params else []
        n = nums[0] if nums else 0
        if final == "A":
            self.row = max(0, self.row - max(n, 1))
        elif final == "B":
            self.row += max(n, 1)
        elif final == "C":
            self.col += max(n, 1)
        elif final == "D":
            self.col = max(0, self.col - max(n, 1))
        elif final == "G":
            self.col = max(n, 1) - 1
        elif final == "K":
            line = self._line()
            if n == 0:
                del line[self.col :]
            elif n == 1:
                for j in range(min(self.col + 1, len(line))):
                    line[j] = " "
            else:
                line.clear()
        elif final == "J":
            if n == 0:
                del self._line()[self.col :]
                del self.lines[self.row + 1 :]
            elif n in (2, 3):
                self.lines = [[]]
                self.row = self.col = 0
        elif final in ("H", "f"):
            self.row = (nums[0] if nums and nums[0] else 1) - 1
            self.col = (nums[1] if len(nums) > 1 and nums[1] else 1) - 1
        elif final == "s":
            self.saved = (self.row, self.col)
        elif final == "u":
            self.row, self.col = self.saved
        # m (colours) and anything else: no effect on the text

    def text(self) -> list[str]:
        """The screen's lines, trailing blanks removed."""
        out = ["".join(line).rstrip() for line in self.lines]
        while out and not out[-1]:
            out.pop()
        return out


class PtySession:
    """A process on a pty of ``width`` x ``height``; ``read_until`` and ``send`` drive it."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str],
        cwd: str,
        width: int = 80,
        height: int = 24,
    ) -> None:
        import fcntl
        import struct
        import termios

        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        self.proc = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self.output = ""

    def _pump(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the process closed its side
            return False
        if not data:
            return False
        self.output += data.decode("utf-8", "replace")
        return True

    def read_until(self, needle: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never appeared; output: {self.output!r}")
            if not self._pump(0.1) and self.proc.poll() is not None:
                self._pump(0.1)
                if needle not in self.output:
                    raise AssertionError(
                        f"exited {self.proc.returncode} before {needle!r}: {self.output!r}"
                    )
        return self.output

    def settle(self, seconds: float) -> None:
        """Keep reading for ``seconds`` (a live display would redraw meanwhile)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._pump(0.05)

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._pump(0.05)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"did not exit; output: {self.output!r}")
        while self._pump(0.05):
            pass
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)

    def screen(self, width: int = 80) -> list[str]:
        s = Screen(width)
        s.feed(self.output)
        return s.text()
