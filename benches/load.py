#!/usr/bin/env python3
"""Load benchmark: relive beside nginx, in one run, on loopback.

Starts nginx as the origin serving a fixed folder, nginx as a reverse proxy in front of it
(proxy_pass with upstream keep-alive), nginx with sub_filter injecting a script tag before
</body>, a bare pingora proxy with no hooks (benches/bare_pingora.rs: the proxy library relive
is built on, alone), a bare pingora answering from the folder's files read into memory (the
ceiling for a static server on pingora), relive in front of the same origin, and relive's static
mode on the same folder. Drives each with wrk at 1 and 50 connections for a small HTML page (injected by the
injecting rows; relive also once more with the page passed through, as for a fetch) and a 100 KB
JS asset (passthrough), then prints requests/s, p50/p99 and relive's ratios to nginx, to bare
pingora and to its own passthrough.

With --peers it also runs the other live-reload tools on the same folder and origin:
live-server 1.2.2 (static, injects), browser-sync 3.0.4 serving the folder and browser-sync
proxying the nginx origin (both inject), installed once with npm under
~/.cache/relive/peers; then it prints relive's ratio to each and every server's RSS after load.

Needs nginx (Debian's nginx-light) and wrk; builds relive in release mode first:

    cargo build --release && python3 benches/load.py [--seconds 5] [--peers]

(it builds the bare pingora proxy itself, with `cargo bench --no-run --bench bare_pingora`).

Every server listens on 127.0.0.1 only; every run is bounded by --seconds; everything started
here is stopped on exit.
"""

import argparse
import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = '<script type="module" src="/__relive/client.js" data-relive data-token="x"></script>'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    sys.exit(f"nothing listens on port {port}")


def write_site(folder):
    body = "".join(f"<p>Paragraph {i} of a small page.</p>\n" for i in range(40))
    with open(os.path.join(folder, "index.html"), "w") as f:
        f.write('<!doctype html><html><head><meta charset="utf-8"><title>bench</title></head>'
                f"<body>\n{body}</body></html>\n")
    line = "function f{0}(a, b) {{ return a * {0} + b; }} // padding padding padding\n"
    js = "".join(line.format(i) for i in range(1400))
    with open(os.path.join(folder, "app.js"), "w") as f:
        f.write(js[: 100 * 1024])


NGINX_CONF = """
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    include /etc/nginx/mime.types;
    keepalive_requests 1000000;
    upstream origin {{ server 127.0.0.1:{origin}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{origin};
        root {site};
    }}
    server {{
        listen 127.0.0.1:{proxy};
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
    server {{
        listen 127.0.0.1:{subfilter};
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Accept-Encoding "";
            sub_filter_once on;
            sub_filter '</body>' '{tag}</body>';
        }}
    }}
}}
"""

WRK_LINE = re.compile(r"Requests/sec:\s+([\d.]+)")
PERCENTILE = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url, connections, seconds, headers=()):
    threads = 1 if connections == 1 else 2
    extra = [arg for header in headers for arg in ("-H", header)]
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-H", "Accept: text/html", *extra, url],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout
    rps = float(WRK_LINE.search(out).group(1))
    pct = {p: to_ms(v, u) for p, v, u in PERCENTILE.findall(out)}
    return rps, pct.get("50"), pct.get("99")


PEERS = ["live-server@1.2.2", "browser-sync@3.0.4"]


def install_peers():
    """Installs the peer tools once (pinned) and returns their bin folder."""
    prefix = os.path.join(os.path.expanduser("~"), ".cache", "relive", "peers")
    bin_dir = os.path.join(prefix, "node_modules", ".bin")
    if not all(os.path.exists(os.path.join(bin_dir, n)) for n in ("live-server", "browser-sync")):
        if not shutil.which("npm"):
            sys.exit("--peers needs npm (Node 20+)")
        os.makedirs(prefix, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", prefix, *PEERS],
                       check=True, timeout=600, stdout=subprocess.DEVNULL)
    return bin_dir


def bench_binary(name):
    """Builds one of relive's [[bench]] programs (release profile) and returns its path."""
    out = subprocess.run(
        ["cargo", "bench", "--no-run", "--bench", name, "--message-format=json"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=1800,
    ).stdout
    for line in out.splitlines():
        message = json.loads(line)
        if (message.get("reason") == "compiler-artifact" and message["target"]["name"] == name
                and message.get("executable")):
            return message["executable"]
    sys.exit(f"cargo built no {name} benchmark")


def rss_mib(pid):
    """Resident memory of a process (node or relive), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--relive", default=None, help="path to the relive binary")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--peers", action="store_true",
                        help="also measure live-server and browser-sync (installed with npm)")
    args = parser.parse_args()
    peers_bin = install_peers() if args.peers else None
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"{tool} not found: apt-get install -y nginx-light wrk")
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    relive_bin = args.relive or os.path.join(target, "release", "relive")
    if not os.path.exists(relive_bin):
        sys.exit(f"{relive_bin} not found: run `cargo build --release` first")

    work = tempfile.mkdtemp(prefix="relive-load-")
    site = os.path.join(work, "site")
    os.mkdir(site)
    write_site(site)
    bare_bin = bench_binary("bare_pingora")
    names = ["origin", "proxy", "subfilter", "bare", "bare_files", "relive", "static"]
    if peers_bin:
        names += ["live_server", "bs_static", "bs_proxy"]
    ports = {name: free_port() for name in names}
    with open(os.path.join(work, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(dir=work, site=site, tag=TAG, **ports))

    procs = []

    def stop():
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(work, ignore_errors=True)

    atexit.register(stop)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    procs.append(subprocess.Popen([nginx, "-c", os.path.join(work, "nginx.conf"), "-g", "daemon off;"]))
    procs.append(subprocess.Popen(
        [bare_bin, "--listen", f"127.0.0.1:{ports['bare']}", "--upstream", f"127.0.0.1:{ports['origin']}"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    procs.append(subprocess.Popen(
        [bare_bin, "--listen", f"127.0.0.1:{ports['bare_files']}", "--folder", site],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    procs.append(subprocess.Popen(
        [relive_bin, "--proxy", f"http://127.0.0.1:{ports['origin']}", "--port", str(ports["relive"]),
         "--strict-port", "--quiet"], cwd=work))
    procs.append(subprocess.Popen(
        [relive_bin, site, "--port", str(ports["static"]), "--strict-port", "--quiet", "--no-watch"], cwd=work))
    pids = {"bare": procs[-4].pid, "bare_files": procs[-3].pid, "relive": procs[-2].pid,
            "static": procs[-1].pid}
    if peers_bin:
        quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
        bs = [os.path.join(peers_bin, "browser-sync"), "start", "--listen", "127.0.0.1", "--no-open",
              "--no-ui", "--no-notify", "--logLevel", "silent"]
        for key, cmd in (
            ("live_server", [os.path.join(peers_bin, "live-server"), f"--port={ports['live_server']}",
                             "--host=127.0.0.1", "--no-browser", "--quiet", site]),
            ("bs_static", bs + ["--server", site, "--port", str(ports["bs_static"])]),
            ("bs_proxy", bs + ["--proxy", f"http://127.0.0.1:{ports['origin']}",
                               "--port", str(ports["bs_proxy"])]),
        ):
            procs.append(subprocess.Popen(cmd, **quiet))
            pids[key] = procs[-1].pid
    for port in ports.values():
        wait_port(port)

    # (label, port, extra request headers, result key)
    rows = [
        ("nginx origin (direct)", "origin", (), "origin"),
        ("nginx proxy_pass", "proxy", (), "proxy"),
        ("nginx sub_filter", "subfilter", (), "subfilter"),
        ("pingora, bare proxy", "bare", (), "bare"),
        ("relive --proxy", "relive", (), "relive"),
        ("relive --proxy, as fetch", "relive", ("Sec-Fetch-Mode: cors",), "relive_pass"),
        ("pingora, files in memory", "bare_files", (), "bare_files"),
        ("relive static", "static", (), "static"),
    ]
    if peers_bin:
        rows += [
            ("live-server (static)", "live_server", (), "live_server"),
            ("browser-sync --server", "bs_static", (), "bs_static"),
            ("browser-sync --proxy", "bs_proxy", (), "bs_proxy"),
        ]
    results = {}
    print(f"relive load benchmark — {time.strftime('%Y-%m-%d %H:%M')} — {os.cpu_count()} cores — wrk {args.seconds}s per row\n")
    for path, what in (("/index.html", "small HTML page (injected by sub_filter and relive)"),
                       ("/app.js", "100 KB JS asset (passthrough)")):
        for connections in (1, 50):
            print(f"{what}, {connections} connection{'s' if connections > 1 else ''}")
            print(f"  {'server':26} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
            for label, port, headers, key in rows:
                if key == "relive_pass" and not path.endswith(".html"):
                    continue  # an asset is passed through anyway
                rps, p50, p99 = wrk(f"http://127.0.0.1:{ports[port]}{path}", connections,
                                    args.seconds, headers)
                results[(path, connections, key)] = (rps, p50, p99)
                print(f"  {label:26} {rps:10.0f} {p50:8.3f} {p99:8.3f}")
            row = lambda key: results[(path, connections, key)]
            ratios = [("relive --proxy / nginx sub_filter" if path.endswith(".html")
                       else "relive --proxy / nginx proxy_pass",
                       row("relive"), row("subfilter" if path.endswith(".html") else "proxy")),
                      ("relive --proxy / bare pingora", row("relive"), row("bare")),
                      ("bare pingora / nginx proxy_pass", row("bare"), row("proxy")),
                      ("relive static / nginx direct", row("static"), row("origin")),
                      ("pingora files in memory / nginx direct", row("bare_files"), row("origin")),
                      ("relive static / pingora files in memory", row("static"), row("bare_files"))]
            if path.endswith(".html"):
                ratios[1:1] = [
                    ("relive injecting / relive passing through", row("relive"), row("relive_pass")),
                    ("relive as fetch / nginx proxy_pass", row("relive_pass"), row("proxy")),
                ]
            if peers_bin:
                ratios += [
                    ("relive static / live-server", row("static"), row("live_server")),
                    ("relive static / browser-sync --server", row("static"), row("bs_static")),
                    ("relive --proxy / browser-sync --proxy", row("relive"), row("bs_proxy")),
                ]
            for label, mine, theirs in ratios:
                print(f"  → {label}: {mine[0] / theirs[0]:.2f}× req/s, p99 {mine[2] - theirs[2]:+.3f} ms")
            print()
    print("resident memory after the load (VmRSS)")
    for key, pid in pids.items():
        label = next(label for label, _, _, k in rows if k == key)
        print(f"  {label:24} {rss_mib(pid):6.1f} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{p} c{c} {k}": v for (p, c, k), v in results.items()}, f, indent=2)


if __name__ == "__main__":
    main()
