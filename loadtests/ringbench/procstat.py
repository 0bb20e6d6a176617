"""CPU time and resident memory of process groups, read from /proc.

CPU time is utime + stime (fields 14 and 15 of /proc/<pid>/stat), which for a
process already include all of its threads. It is counted in clock ticks
(normally 10 ms); runs last seconds, so the rounding stays well under 1 %.
"""

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid):
    """Fields of /proc/<pid>/stat after the command name, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    return data[data.rfind(")") + 2:].split()


def ppid(pid):
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def cpu_seconds(pid):
    """utime + stime of one process (all its threads), in seconds; 0 if gone."""
    fields = _stat_fields(pid)
    if not fields:
        return 0.0
    # fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid, field="VmRSS"):
    """VmRSS (or another /proc status field in kB, e.g. RssAnon) of one process in KiB; 0 if
    gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def descendants(root):
    """All living descendants of `root` (not including it)."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            parent = ppid(int(name))
            if parent is not None:
                children.setdefault(parent, []).append(int(name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid):
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


class Group:
    """The processes that make up one server, found afresh at each reading.

    `pids()` is the launched process and its descendants (nginx's master and
    worker), or the launched process alone with `only_root` (ringway's data
    plane, whose control-plane child is reported on its own).
    """

    def __init__(self, root, only_root=False):
        self.root = root
        self.only_root = only_root

    def pids(self):
        if not alive(self.root):
            return []
        if self.only_root:
            return [self.root]
        return [self.root] + [p for p in descendants(self.root) if alive(p)]

    def cpu_seconds(self):
        return sum(cpu_seconds(p) for p in self.pids())

    def rss_kib(self, field="VmRSS"):
        return sum(rss_kib(p, field) for p in self.pids())


class ChildGroup(Group):
    """Descendants of `root` selected by `select(pid)`, e.g. `ringway controlplane`."""

    def __init__(self, root, select):
        super().__init__(root)
        self.select = select

    def pids(self):
        return [p for p in descendants(self.root) if alive(p) and self.select(p)]
