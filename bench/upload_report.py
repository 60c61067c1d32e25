#!/usr/bin/env python3
"""Measurement and report helper of bench/upload.sh (see bench/README.md).

  upload_report.py rounds      --url URL --pid PID --image IMG --spool DIR --runs N --out JSON
  upload_report.py concurrent  --url URL --pid PID --image IMG --spool DIR --count N --out JSON
  upload_report.py report      --meta JSON --rounds JSON [--concurrent JSON] [--markdown FILE]

rounds: the 4 GiB upload against `cat IMAGE > SPOOL/x; sync -d SPOOL/x`, contenders alternating
(odd rounds forward, even rounds reversed). The daemon's VmRSS/VmHWM are sampled every 50 ms
during each upload. After each upload the scan is waited for (the daemon then deletes its spool
file) and everything is flushed (`sync`) before the next contender starts.

concurrent: COUNT uploads of a small image started at once; 503 queue-full is retried after
Retry-After; then every scan is polled until it ends.

report: prints the summary and, with --markdown, writes the block for bench/RESULTS.md.
Standard library only.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
MB = 1e6


# --- /proc helpers -----------------------------------------------------------------------------

def machine_busy_s():
    """Busy CPU seconds of the whole machine so far (all cores; user nice system irq softirq steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK


def process_cpu_s(pid):
    """utime + stime of a process, all its threads (not its children)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def process_mem_kb(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0])
    return out.get("VmRSS", 0), out.get("VmHWM", 0)


class RssSampler:
    """Samples VmRSS of PID every `interval` seconds in a thread; keeps the maximum."""

    def __init__(self, pid, interval=0.05):
        self.pid, self.interval = pid, interval
        self.max_rss_kb = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                rss, _ = process_mem_kb(self.pid)
            except OSError:
                return
            self.max_rss_kb = max(self.max_rss_kb, rss)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        try:  # one last sample after the command
            self.max_rss_kb = max(self.max_rss_kb, process_mem_kb(self.pid)[0])
        except OSError:
            pass


def run_timed(cmd, stdout=subprocess.DEVNULL):
    """Runs cmd; returns (exit status, wall s, cpu s of the child (user+sys, from wait4), max RSS kB)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=stdout, stdin=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss


# --- HTTP helpers ------------------------------------------------------------------------------

def http_json(method, url, timeout=30):
    req = urllib.request.Request(url, method=method)
    if os.environ.get("BORDERSCAN_TOKEN"):  # bench/lib.sh's start_daemon sets it
        req.add_header("Authorization", "Bearer " + os.environ["BORDERSCAN_TOKEN"])
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"raw": body.decode(errors="replace")}


def wait_scan(base, scan_id, timeout_s):
    """Polls GET /api/v1/scans/{id} until done/failed; returns the last scan JSON (or None)."""
    deadline = time.monotonic() + timeout_s
    last = None
    delay = 0.05
    while time.monotonic() < deadline:
        code, j = http_json("GET", f"{base}/api/v1/scans/{scan_id}")
        if code == 200:
            last = j
            if j.get("status") in ("done", "failed"):
                return j
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    return last


def wait_gone(path, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not os.path.exists(path)


def curl_upload_cmd(image, url, body_out, headers_out=None, extra_headers=()):
    # -T streams the file (with a Content-Length); --data-binary @FILE would first read the whole
    # file into curl's memory. -X POST: -T alone would be a PUT.
    cmd = ["curl", "-sS", "-o", body_out, "-w", "%{http_code} %{time_total} %{speed_upload} %{size_upload}",
           "-T", image, "-X", "POST", "-H", "Content-Type: application/octet-stream"]
    if headers_out:
        cmd += ["-D", headers_out]
    for h in extra_headers:
        cmd += ["-H", h]
    return cmd + [url]


def read_json_file(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# --- rounds: the big upload against cat ------------------------------------------------------------

def flush():
    subprocess.run(["sync"], check=True)
    time.sleep(0.5)


def contender_cat(a, work, rnd):
    dest = os.path.join(a.spool, f"bench-cat-{rnd}.bin")
    busy0 = machine_busy_s()
    with open(dest, "wb") as out:  # what the shell's `>` does: O_WRONLY|O_CREAT|O_TRUNC
        rc1, t_cat, cpu1, _ = run_timed(["cat", a.image], stdout=out)
    rc2, t_sync, cpu2, _ = run_timed(["sync", "-d", dest])  # fdatasync(dest), as the daemon does
    busy1 = machine_busy_s()
    size = os.path.getsize(dest)
    os.remove(dest)
    wall = t_cat + t_sync
    ok = rc1 == 0 and rc2 == 0 and size == a.size
    return {
        "name": "cat", "wall": wall, "cat_s": t_cat, "sync_s": t_sync, "client_cpu": cpu1 + cpu2,
        "others_cores": max(0.0, (busy1 - busy0) - (cpu1 + cpu2)) / wall, "ok": ok,
        "note": "" if ok else f"cat rc={rc1} sync rc={rc2} size={size}",
    }


def contender_upload(a, work, rnd, with_digest):
    name = "upload+sha" if with_digest else "upload"
    body = os.path.join(work, f"resp-{name}-{rnd}.json")
    label = f"bench-{name}-r{rnd}".replace("+", "-")
    url = f"{a.url}/api/v1/scans?label={label}&filename=bench.img"
    extra = [f"X-Image-SHA256: {a.sha256}"] if with_digest else []
    cmd = curl_upload_cmd(a.image, url, body, extra_headers=extra)
    rss0, hwm0 = process_mem_kb(a.pid)
    dcpu0 = process_cpu_s(a.pid)
    busy0 = machine_busy_s()
    with RssSampler(a.pid) as sampler:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        out = p.stdout.read().decode()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
    busy1 = machine_busy_s()
    dcpu = process_cpu_s(a.pid) - dcpu0
    _, hwm1 = process_mem_kb(a.pid)
    rc = os.waitstatus_to_exitcode(status)
    client_cpu = ru.ru_utime + ru.ru_stime
    parts = out.split()
    code = parts[0] if parts else "?"
    resp = read_json_file(body) or {}
    res = {
        "name": name, "wall": wall, "client_cpu": client_cpu, "client_maxrss_kb": ru.ru_maxrss,
        "daemon_cpu": dcpu, "rss_before_kb": rss0, "rss_max_kb": sampler.max_rss_kb, "rss_samples": sampler.samples,
        "hwm_before_kb": hwm0, "hwm_after_kb": hwm1, "http": code,
        "curl_time_total": float(parts[1]) if len(parts) > 1 else None,
        "others_cores": max(0.0, (busy1 - busy0) - client_cpu - dcpu) / wall,
        "ok": False, "note": "",
    }
    if rc != 0 or code != "202":
        res["note"] = f"curl rc={rc} http={code} body={json.dumps(resp)[:300]}"
        return res
    if resp.get("image_sha256") != a.sha256 or resp.get("size") != a.size:
        res["note"] = f"202 but sha256/size differ: {resp}"
        return res
    scan_id = resp["id"]
    res["id"] = scan_id
    t1 = time.monotonic()
    final = wait_scan(a.url, scan_id, a.scan_timeout)
    res["scan_wait_s"] = time.monotonic() - t1
    if not final or final.get("status") not in ("done", "failed"):
        http_json("DELETE", f"{a.url}/api/v1/scans/{scan_id}")
        res["note"] = f"scan did not end within {a.scan_timeout} s; cancelled"
        final = wait_scan(a.url, scan_id, 60)
    res["scan_status"] = (final or {}).get("status")
    res["verdict"] = (final or {}).get("verdict")
    res["spool_removed"] = wait_gone(os.path.join(a.spool, scan_id + ".img"))
    res["ok"] = res["scan_status"] == "done" and res["verdict"] == a.expect_verdict and res["spool_removed"]
    if not res["ok"] and not res["note"]:
        res["note"] = (f"scan {res['scan_status']} verdict {res['verdict']} (expected {a.expect_verdict}), "
                       f"spool file removed: {res['spool_removed']}; error: {(final or {}).get('error')}")
    return res


def cmd_rounds(a):
    a.size = os.path.getsize(a.image)
    work = a.work
    contenders = [lambda r: contender_cat(a, work, r), lambda r: contender_upload(a, work, r, False)]
    if a.digest_variant:
        contenders.append(lambda r: contender_upload(a, work, r, True))
    # Warm the page cache (both contenders read the image from memory) and time the hash the daemon
    # computes on the way, with the same library (OpenSSL).
    run_timed(["cat", a.image])
    _, t_hash, _, _ = run_timed(["openssl", "dgst", "-sha256", a.image])
    _, t_read, _, _ = run_timed(["cat", a.image])
    out = {"image": a.image, "size": a.size, "sha256": a.sha256, "runs": a.runs, "rounds": [],
           "openssl_sha256_s": t_hash, "cat_to_devnull_s": t_read, "expect_verdict": a.expect_verdict}
    for rnd in range(1, a.runs + 1):
        order = list(range(len(contenders)))
        if rnd % 2 == 0:
            order.reverse()
        results = []
        for i in order:
            flush()
            r = contenders[i](rnd)
            r["round"] = rnd
            results.append(r)
            flag = "" if r["ok"] else "  FAILED: " + r["note"]
            extra = ""
            if r["name"] == "cat":
                extra = f" (cat {r['cat_s']:.2f} s + fdatasync {r['sync_s']:.2f} s)"
            else:
                extra = (f" http {r['http']}, daemon RSS max {r['rss_max_kb'] / 1024:.1f} MiB, daemon CPU "
                         f"{r['daemon_cpu']:.2f} s, curl CPU {r['client_cpu']:.2f} s, scan {r.get('verdict')}")
            print(f"  round {rnd}: {r['name']:<11} {r['wall']:7.2f} s  {a.size / MB / r['wall']:7.0f} MB/s"
                  f"  others {r['others_cores']:.2f} cores{extra}{flag}", flush=True)
        out["rounds"].append(results)
    flush()
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    return 0


# --- concurrent uploads ------------------------------------------------------------------------------

def retry_after(headers_path):
    try:
        with open(headers_path, errors="replace") as f:
            for line in f:
                if line.lower().startswith("retry-after:"):
                    return float(line.split(":", 1)[1].strip())
    except (OSError, ValueError):
        pass
    return 1.0


def cmd_concurrent(a):
    n = a.count
    t_start = time.monotonic()
    state = [{"i": i, "attempts": 0, "codes": [], "latency": None, "id": None} for i in range(n)]
    dcpu0 = process_cpu_s(a.pid)
    with RssSampler(a.pid) as sampler:
        pending = list(range(n))
        while pending:
            procs = {}
            for i in pending:  # all at once
                s = state[i]
                s["attempts"] += 1
                body = os.path.join(a.work, f"conc-{i}.json")
                hdrs = os.path.join(a.work, f"conc-{i}.hdr")
                url = f"{a.url}/api/v1/scans?label=bench-concurrent-{i}&filename=small-{i}.img"
                cmd = curl_upload_cmd(a.image, url, body, hdrs, [f"X-Station: bench-{i % 8}"])
                procs[i] = (time.monotonic(), subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL),
                            body, hdrs)
            retry, wait_s = [], 0.0
            for i, (t0, p, body, hdrs) in procs.items():
                out = p.communicate()[0].decode().split()
                s = state[i]
                code = out[0] if out else "?"
                s["codes"].append(code)
                s["latency"] = float(out[1]) if len(out) > 1 else None  # curl's time_total
                if code == "202":
                    s["id"] = (read_json_file(body) or {}).get("id")
                elif code == "503" and s["attempts"] < 5:
                    retry.append(i)
                    wait_s = max(wait_s, retry_after(hdrs))
            pending = retry
            if pending:
                time.sleep(wait_s)
        t_uploaded = time.monotonic()
        finals = {}
        for s in state:
            if s["id"]:
                finals[s["i"]] = wait_scan(a.url, s["id"], a.scan_timeout)
        t_done = time.monotonic()
    dcpu = process_cpu_s(a.pid) - dcpu0
    failures = []
    verdicts = {}
    for s in state:
        f = finals.get(s["i"])
        v = (f or {}).get("verdict")
        verdicts[str(v)] = verdicts.get(str(v), 0) + 1
        if not s["id"]:
            failures.append(f"upload {s['i']}: HTTP {','.join(s['codes'])}")
        elif not f or f.get("status") != "done":
            failures.append(f"upload {s['i']}: scan {s['id']} {(f or {}).get('status')} {(f or {}).get('error')}")
        elif v != a.expect_verdict:
            failures.append(f"upload {s['i']}: verdict {v}, expected {a.expect_verdict}")
    left = [x for x in os.listdir(a.spool) if x.endswith((".img", ".part"))]
    deadline = time.monotonic() + 10
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [x for x in os.listdir(a.spool) if x.endswith((".img", ".part"))]
    if left:
        failures.append(f"{len(left)} spool files left: {left[:5]}")
    lat = [s["latency"] for s in state if s["latency"] is not None]
    out = {
        "count": n, "image_size": os.path.getsize(a.image), "expect_verdict": a.expect_verdict,
        "accepted_first_try": sum(1 for s in state if s["codes"][:1] == ["202"]),
        "accepted": sum(1 for s in state if s["id"]),
        "retries_503": sum(c == "503" for s in state for c in s["codes"]),
        "upload_phase_s": t_uploaded - t_start, "total_s": t_done - t_start,
        "latency_median_s": statistics.median(lat) if lat else None, "latency_max_s": max(lat) if lat else None,
        "verdicts": verdicts, "failures": failures, "daemon_rss_max_kb": sampler.max_rss_kb,
        "daemon_cpu_s": dcpu, "codes": [s["codes"] for s in state],
    }
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"  {out['accepted']}/{n} accepted ({out['accepted_first_try']} at the first try, "
          f"{out['retries_503']} retried after 503), all scans ended after {out['total_s']:.2f} s; "
          f"verdicts {verdicts}; failures {len(failures)}", flush=True)
    for f in failures:
        print("  FAILURE: " + f, flush=True)
    return 0


# --- report ---------------------------------------------------------------------------------------

def med_min_max(xs):
    return statistics.median(xs), min(xs), max(xs)


def fmt3(xs, f="{:.2f}"):
    m, lo, hi = med_min_max(xs)
    return f.format(m), f.format(lo), f.format(hi)


def cmd_report(a):
    meta = read_json_file(a.meta)
    rd = read_json_file(a.rounds) if a.rounds else None
    cc = read_json_file(a.concurrent) if a.concurrent else None
    lines = []
    w = lines.append
    size = rd["size"] if rd else 0
    w("<!-- upload.sh result begin -->")
    if rd:
        w(f"#### Upload of a {size / 2**30:.3g} GiB image over loopback ({size / MB:.0f} MB), "
          f"{rd['runs']} rounds")
    else:
        w("#### Concurrent uploads")
    w("")
    w(f"Measured {meta['start']} to {meta['end']} with `{meta['cmdline']}`. Machine: {meta['nproc']} cores "
      f"({meta['cpu']}), {meta['mem_gib']:.1f} GiB RAM, load average {meta['load_before']} at the start, "
      f"{meta['load_after']} at the end. Spool and temp folder on `{meta['disk']}` "
      f"({meta['fstype']}, mount options `{meta['mount_opts']}`; {meta['avail_before']} free before). "
      f"borderscand {meta['version']} (`{meta['binary']}`; checkout at commit {meta['git_rev']}"
      f"{meta['git_dirty']}); {meta['curl']}; "
      f"kernel {meta['kernel']}; vm.dirty_ratio {meta['dirty_ratio']}, dirty_background_ratio "
      f"{meta['dirty_background_ratio']}. Daemon: `[jobs] workers = {meta['workers']}`, `io_threads = "
      f"{meta['io_threads']}`, worker isolation `process`, `keep_images = false`.")
    w("")
    if rd:
        by = {}
        for rnd in rd["rounds"]:
            for r in rnd:
                by.setdefault(r["name"], []).append(r)
        names = [n for n in ("cat", "upload", "upload+sha") if n in by]
        labels = {"cat": "baseline: `cat IMAGE > SPOOL/x; sync -d SPOOL/x`",
                  "upload": "upload: `curl -T IMAGE -X POST …/api/v1/scans`",
                  "upload+sha": "upload + `X-Image-SHA256` (verified)"}
        w(f"Image: {meta['image_desc']}. Page cache warm (the image is read once before the first round; "
          f"`cat IMAGE > /dev/null` then takes {rd['cat_to_devnull_s']:.2f} s, `openssl dgst -sha256 IMAGE` "
          f"{rd['openssl_sha256_s']:.2f} s = {size / MB / rd['openssl_sha256_s']:.0f} MB/s). Contenders "
          f"alternate: odd rounds in the order below, even rounds reversed; `sync` before each.")
        w("")
        w("| contender | median s | min s | max s | MB/s (median) | client CPU s | daemon CPU s | "
          "daemon peak RSS MiB | others' cores | ok |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for n in names:
            rs = by[n]
            m, lo, hi = fmt3([r["wall"] for r in rs])
            mbps = size / MB / statistics.median([r["wall"] for r in rs])
            ccpu = statistics.median([r["client_cpu"] for r in rs])
            dcpu = f"{statistics.median([r['daemon_cpu'] for r in rs]):.2f}" if n != "cat" else ""
            rss = f"{max(r['rss_max_kb'] for r in rs) / 1024:.1f}" if n != "cat" else ""
            oth = statistics.median([r["others_cores"] for r in rs])
            ok = f"{sum(r['ok'] for r in rs)}/{len(rs)}"
            w(f"| {labels[n]} | {m} | {lo} | {hi} | {mbps:.0f} | {ccpu:.2f} | {dcpu} | {rss} | {oth:.2f} | {ok} |")
        cats = by["cat"]
        w("")
        w(f"The baseline splits into `cat` {statistics.median([r['cat_s'] for r in cats]):.2f} s and `sync -d` "
          f"(fdatasync) {statistics.median([r['sync_s'] for r in cats]):.2f} s (medians). The upload's time is "
          f"curl's whole run: connect, `Expect: 100-continue`, body, the daemon's fdatasync, the 202.")
        w("")
        w("| ratio: upload throughput / cat throughput (= cat time / upload time) | median of per-round | min | "
          "max | ratio of medians | target |")
        w("|---|---:|---:|---:|---:|---|")
        for n in names[1:]:
            per = []
            for rnd in rd["rounds"]:
                c = next(r for r in rnd if r["name"] == "cat")
                u = next(r for r in rnd if r["name"] == n)
                per.append(c["wall"] / u["wall"])
            m, lo, hi = med_min_max(per)
            rom = statistics.median([r["wall"] for r in cats]) / statistics.median([r["wall"] for r in by[n]])
            verdict = "met" if m >= 0.7 else "**not met**"
            w(f"| {labels[n]} | **{m:.2f}** | {lo:.2f} | {hi:.2f} | {rom:.2f} | ≥ 0.70 ({verdict}) |")
        w("")
        w("Per round (others' cores in brackets: how much CPU other people's jobs took meanwhile):")
        w("")
        w("| round | order | " + " | ".join(f"{n} s" for n in names) + " | " +
          " | ".join(f"ratio {n}" for n in names[1:]) + " |")
        w("|---:|---|" + "---:|" * (2 * len(names) - 1))
        for rnd in rd["rounds"]:
            get = {r["name"]: r for r in rnd}
            cells = [f"{get[n]['wall']:.2f} ({get[n]['others_cores']:.2f})" for n in names]
            ratios = [f"{get['cat']['wall'] / get[n]['wall']:.2f}" for n in names[1:]]
            order = " → ".join(r["name"] for r in rnd)
            w(f"| {rnd[0]['round']} | {order} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
        ups = [r for n in names[1:] for r in by[n]]
        peak = max(r["rss_max_kb"] for r in ups) / 1024
        before = statistics.median([r["rss_before_kb"] for r in ups]) / 1024
        hwm = max(r["hwm_after_kb"] for r in ups) / 1024
        w("")
        w(f"Daemon memory: VmRSS sampled every 50 ms during each upload ({sum(r['rss_samples'] for r in ups)} "
          f"samples): **peak {peak:.1f} MiB** ({peak * 1.048576:.1f} MB; target < 100 MB: "
          f"{'met' if peak * 1.048576 < 100 else '**not met**'}), {before:.1f} MiB just before the uploads "
          f"(median); VmHWM (the process's lifetime peak, start-up included) {hwm:.1f} MiB after the last one. "
          f"curl's own peak RSS: {max(r['client_maxrss_kb'] for r in ups) / 1024:.1f} MiB. Daemon CPU per GB "
          f"received: {statistics.median([r['daemon_cpu'] for r in ups]) / (size / 1e9):.2f} s "
          f"(SHA-256, copies, system calls; all its threads). Each scan ended "
          f"`{'/'.join(sorted({str(r.get('verdict')) for r in ups}))}` (expected `{rd['expect_verdict']}`) and its "
          f"spool file was removed: {all(r.get('spool_removed') for r in ups)}.")
        bad = [r for n in names for r in by[n] if not r["ok"]]
        for r in bad:
            w(f"- round {r['round']} {r['name']}: FAILED: {r['note']}")
        w("")
    if cc:
        w(f"Concurrent: {cc['count']} uploads of a {cc['image_size'] / 2**20:.0f} MiB image "
          f"({meta['small_desc']}) started at once (one curl process each).")
        w("")
        w("| accepted (202) | at first try | 503 retried | upload phase s | all scans ended after s | "
          "latency median s | latency max s | verdicts | daemon peak RSS MiB | failures |")
        w("|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
        v = ", ".join(f"{k} {n}" for k, n in sorted(cc["verdicts"].items()))
        w(f"| {cc['accepted']}/{cc['count']} | {cc['accepted_first_try']} | {cc['retries_503']} | "
          f"{cc['upload_phase_s']:.2f} | {cc['total_s']:.2f} | {cc['latency_median_s']:.3f} | "
          f"{cc['latency_max_s']:.3f} | {v} | {cc['daemon_rss_max_kb'] / 1024:.1f} | **{len(cc['failures'])}** |")
        w("")
        w("Latency = curl's `time_total` of one upload (start to 202). Expected verdict of every scan: "
          f"`{cc['expect_verdict']}`; a failure is a non-202 after retries, a scan that did not end `done` "
          "with that verdict, or a spool file left behind.")
        for f in cc["failures"]:
            w(f"- FAILURE: {f}")
        w("")
    w("<!-- upload.sh result end -->")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("rounds", "concurrent"):
        s = sub.add_parser(name)
        s.add_argument("--url", required=True)
        s.add_argument("--pid", type=int, required=True)
        s.add_argument("--image", required=True)
        s.add_argument("--spool", required=True)
        s.add_argument("--work", required=True)
        s.add_argument("--out", required=True)
        s.add_argument("--expect-verdict", default="flagged")
        s.add_argument("--scan-timeout", type=float, default=1800)
    sub.choices["rounds"].add_argument("--runs", type=int, default=3)
    sub.choices["rounds"].add_argument("--sha256", required=True)
    sub.choices["rounds"].add_argument("--no-digest-variant", dest="digest_variant", action="store_false")
    sub.choices["concurrent"].add_argument("--count", type=int, default=32)
    r = sub.add_parser("report")
    r.add_argument("--meta", required=True)
    r.add_argument("--rounds")
    r.add_argument("--concurrent")
    r.add_argument("--markdown")
    a = p.parse_args()
    return {"rounds": cmd_rounds, "concurrent": cmd_concurrent, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
