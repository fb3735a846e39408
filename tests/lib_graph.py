"""doc/architecture.md's graph of lib/ and shop/ is the code's: which
file calls a function that another defines.  Run as a test, it fails
when the two differ, on a cycle, and when lib/ calls into shop/; run
with --print, it prints the graph to paste.

A function is "defined" in the file where its name starts a line
followed by "(" (the tree's style: the return type on the line above),
and "called" wherever else its name is followed by "(".  Only agora_*
functions count: the static ones stay inside their file."""
import glob
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("AGORA_SRCDIR", os.path.join(HERE, ".."))
sys.path.insert(0, HERE)


def graph():
    files = sorted(glob.glob(os.path.join(SRC, "lib", "*.c")) +
                   glob.glob(os.path.join(SRC, "shop", "*.c")))
    name = {f: ("shop/" if os.path.basename(os.path.dirname(f)) == "shop" else "") +
            os.path.basename(f)[:-2] for f in files}
    text = {f: open(f).read() for f in files}
    defined = {}
    for f in files:
        for fn in re.findall(r"(?m)^(agora_\w+)\(", text[f]):
            defined[fn] = name[f]
    edges = {}
    for f in files:
        for fn in set(re.findall(r"\b(agora_\w+)\s*\(", text[f])):
            d = defined.get(fn)
            if d and d != name[f]:
                edges.setdefault(name[f], set()).add(d)
    return "\n".join("%-13s -> %s" % (k, " ".join(sorted(v))) for k, v in sorted(edges.items()))


def cycles(lines):
    """The files that reach themselves again."""
    edges = {}
    for ln in lines.splitlines():
        a, b = ln.split("->")
        edges[a.strip()] = b.split()
    out = []
    for start in sorted(edges):
        seen, todo = set(), list(edges.get(start, []))
        while todo:
            n = todo.pop()
            if n == start:
                out.append(start)
                break
            if n not in seen:
                seen.add(n)
                todo += edges.get(n, [])
    return out


def documented():
    text = open(os.path.join(SRC, "doc", "architecture.md")).read()
    m = re.search(r"<!-- lib-graph -->\n```\n(.*?)```", text, re.S)
    return m.group(1).rstrip("\n") if m else None, text


def main():
    if "--print" in sys.argv:
        g = graph()
        print(g)
        loop = cycles(g)
        if loop:
            print("in a cycle: " + " ".join(loop))
        return
    from agoratest import Tap
    t = Tap()
    g = graph()
    doc, text = documented()
    t.ok(doc is not None, "doc/architecture.md has the lib-graph block")
    t.ok(doc == g, "its graph of lib/ is the code's (tests/lib_graph.py --print)",
         "\n".join(["--- the code's:", g, "--- the document's:", doc or ""]))
    loop = cycles(g)
    t.ok(not loop, "the calls between the files of lib/ and shop/ run one way (no cycle)", loop)
    up = [ln for ln in g.splitlines()
          if not ln.startswith("shop/") and "shop/" in ln.split("->")[1]]
    t.ok(not up, "no file of lib/ calls into shop/", up)
    t.done()


main()
