#!/usr/bin/env python3
"""A screenshot of the Neovim plugin's ghost text: real Neovim 0.11 in a tmux pane (a real
terminal grid, with colours), the plugin and the real `tandem` binary with its embedded model
(offline), on examples/demo/routes.rs at line 21 (the README's example).

    scripts/nvim-screenshot.py OUT_BASENAME      # writes OUT_BASENAME.txt and OUT_BASENAME.png

The .txt is the screen as text; the .png is the same screen (tmux capture-pane -e, colours
kept) drawn as HTML by headless Chromium. Environment: TANDEM_BIN, NVIM (default nvim),
CHROMIUM (default /usr/bin/chromium). Waits are bounded and say what the screen held.
"""

import html
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLS, ROWS = 88, 24
EXPECTED = "handlers::list_orders);"


def wait_until(seconds, check, explain):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            sys.exit(f"nvim-screenshot: after {seconds} s: {explain()}")
        time.sleep(0.1)


# --- ANSI (as tmux capture-pane -e writes it) to HTML ---

BASE16 = [
    "#000000", "#cd0000", "#00cd00", "#cdcd00", "#0000ee", "#cd00cd", "#00cdcd", "#e5e5e5",
    "#7f7f7f", "#ff0000", "#00ff00", "#ffff00", "#5c5cff", "#ff00ff", "#00ffff", "#ffffff",
]


def color256(n):
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return "#%02x%02x%02x" % (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + 10 * (n - 232)
    return "#%02x%02x%02x" % (v, v, v)


def sgr(params, style):
    codes = [int(p) if p else 0 for p in params.split(";")] if params else [0]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0:
            style.clear()
        elif c == 1:
            style["bold"] = True
        elif c == 3:
            style["italic"] = True
        elif c == 4:
            style["underline"] = True
        elif c == 7:
            style["reverse"] = True
        elif c in (22,):
            style.pop("bold", None)
        elif c == 23:
            style.pop("italic", None)
        elif c == 24:
            style.pop("underline", None)
        elif c == 27:
            style.pop("reverse", None)
        elif 30 <= c <= 37 or 90 <= c <= 97:
            style["fg"] = BASE16[c - 30 if c < 90 else c - 90 + 8]
        elif 40 <= c <= 47 or 100 <= c <= 107:
            style["bg"] = BASE16[c - 40 if c < 100 else c - 100 + 8]
        elif c in (39, 49):
            style.pop("fg" if c == 39 else "bg", None)
        elif c in (38, 48) and i + 1 < len(codes):
            key = "fg" if c == 38 else "bg"
            if codes[i + 1] == 5 and i + 2 < len(codes):
                style[key] = color256(codes[i + 2])
                i += 2
            elif codes[i + 1] == 2 and i + 4 < len(codes):
                style[key] = "#%02x%02x%02x" % tuple(codes[i + 2 : i + 5])
                i += 4
        i += 1


def ansi_to_html(text, cursor, fg="#e0e2ea", bg="#14161b"):
    """`text` as a <pre>, with a bar cursor at `cursor` (column, row)."""
    out, style, i = [], {}, 0
    buf = []

    def flush():
        if not buf:
            return
        s = dict(style)
        f, b = s.get("fg", fg), s.get("bg", bg)
        if s.get("reverse"):
            f, b = b, f
        css = f"color:{f};background:{b}"
        if s.get("bold"):
            css += ";font-weight:bold"
        if s.get("italic"):
            css += ";font-style:italic"
        if s.get("underline"):
            css += ";text-decoration:underline"
        out.append(f'<span style="{css}">{html.escape("".join(buf))}</span>')
        buf.clear()

    while i < len(text):
        if text[i] == "\x1b" and i + 1 < len(text) and text[i + 1] == "[":
            j = i + 2
            while j < len(text) and not text[j].isalpha():
                j += 1
            if j < len(text) and text[j] == "m":
                flush()
                sgr(text[i + 2 : j], style)
            i = j + 1
            continue
        buf.append(text[i])
        i += 1
    flush()
    return (
        "<!doctype html><meta charset=utf-8><style>"
        f"body{{margin:0;background:{bg}}}"
        f"pre{{position:relative;margin:0;padding:10px;font:15px/1.3 'DejaVu Sans Mono',monospace;color:{fg};background:{bg}}}"
        f"#cursor{{position:absolute;left:calc(10px + {cursor[0]}ch);top:calc(10px + {cursor[1]} * 1.3em);"
        f"width:2px;height:1.3em;background:{fg}}}"
        "</style><pre>" + "".join(out) + '<div id="cursor"></div></pre>'
    )


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = os.path.abspath(sys.argv[1])
    tandem = os.path.abspath(os.environ.get("TANDEM_BIN") or os.path.join(ROOT, "target/debug/tandem"))
    nvim = os.environ.get("NVIM") or shutil.which("nvim")
    chromium = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
    for what, path in (("TANDEM_BIN", tandem), ("NVIM", nvim), ("CHROMIUM", chromium), ("tmux", shutil.which("tmux"))):
        if not path or not os.access(path, os.X_OK):
            sys.exit(f"nvim-screenshot: {what} not found ({path})")

    tmp = tempfile.mkdtemp(prefix="tandem-nvim-shot-")
    socket = f"tandem-shot-{os.getpid()}"
    tmux = ["tmux", "-L", socket, "-f", "/dev/null"]
    try:
        ws = os.path.join(tmp, "demo")
        os.makedirs(ws)
        shutil.copy(os.path.join(ROOT, "examples/demo/routes.rs"), ws)
        open(os.path.join(ws, "tandem.toml"), "w").close()
        init = os.path.join(tmp, "init.lua")
        with open(init, "w") as f:
            f.write(
                f"vim.opt.rtp:prepend({os.path.join(ROOT, 'editors/nvim')!r})\n"
                f"require('tandem').setup({{ cmd = {{ {tandem!r} }} }})\n"
                "vim.o.number = true\nvim.o.termguicolors = true\nvim.o.swapfile = false\n"
            )
        listen = os.path.join(tmp, "nvim.sock")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,
            "TERM": "tmux-256color",
            "COLORTERM": "truecolor",
            "LANG": "C.UTF-8",
            "XDG_CONFIG_HOME": os.path.join(tmp, "config"),
            "XDG_DATA_HOME": os.path.join(tmp, "data"),
            "XDG_STATE_HOME": os.path.join(tmp, "state"),
            "XDG_CACHE_HOME": os.path.join(tmp, "cache"),
        }
        subprocess.run(
            tmux + ["new-session", "-d", "-x", str(COLS), "-y", str(ROWS), "-c", ws]
            + ["env", "-i"] + [f"{k}={v}" for k, v in env.items()]
            + [nvim, "-u", init, "-i", "NONE", "--listen", listen, "+21", "routes.rs"],
            check=True,
        )
        subprocess.run(tmux + ["set-option", "-g", "status", "off"], check=True)
        subprocess.run(tmux + ["set-option", "-sa", "terminal-overrides", ",*:Tc"], check=True)

        def screen(colours=False):
            r = subprocess.run(tmux + ["capture-pane", "-p"] + (["-e"] if colours else []), capture_output=True, text=True)
            return r.stdout

        def expr(e):
            r = subprocess.run([nvim, "--server", listen, "--remote-expr", e], capture_output=True, text=True)
            return r.stdout.strip()

        wait_until(
            20,
            lambda: expr('luaeval("#vim.lsp.get_clients({name=\'tandem\', bufnr=0})")') == "1",
            lambda: "the tandem client did not attach to routes.rs; screen:\n" + screen(),
        )
        subprocess.run(tmux + ["send-keys", "A"], check=True)
        wait_until(10, lambda: "-- INSERT --" in screen(), lambda: "Neovim is not in insert mode; screen:\n" + screen())
        # Entering insert mode types nothing, so ask with the plugin's trigger key (Alt-\\).
        subprocess.run(tmux + ["send-keys", "M-\\"], check=True)
        line21 = lambda: next((l for l in screen().splitlines() if l.lstrip().startswith("21 ")), "")
        wait_until(
            20,
            lambda: line21().rstrip().endswith("router.get(paths::ORDERS, " + EXPECTED),
            lambda: f"expected the ghost text {EXPECTED!r} after line 21; line 21 is {line21()!r}; screen:\n" + screen(),
        )
        text, coloured = screen(), screen(colours=True)
        position = subprocess.run(tmux + ["display-message", "-p", "#{cursor_x} #{cursor_y}"], capture_output=True, text=True, check=True)
        cursor = tuple(int(v) for v in position.stdout.split())
        with open(out + ".txt", "w") as f:
            f.write(text)
        page = os.path.join(tmp, "screen.html")
        with open(page, "w") as f:
            f.write(ansi_to_html(coloured, cursor))
        width, height = 10 * 2 + COLS * 9 + 4, 10 * 2 + int(ROWS * 15 * 1.3) + 4
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--hide-scrollbars", f"--user-data-dir={os.path.join(tmp, 'chromium')}",
             f"--window-size={width},{height}", f"--screenshot={out}.png", "file://" + page],
            check=True, capture_output=True, timeout=60,
        )
        print(f"{out}.txt\n{out}.png")
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
