#!/usr/bin/env python3
"""Helpers of bench/report.sh (issue #12): RSS sampler, concurrent downloads, report paging and the
result table. Standard library only.

    report_report.py sample   --pid PID --out SAMPLES.tsv [--interval S] [--cap-kb KB --cap-file F]
    report_report.py download --url URL --count M --dir DIR --out JSON [--cap-file F]
    report_report.py verify   --downloads JSON --out JSON
    report_report.py page     --url URL --id ID --out JSON [--limit N]
    report_report.py table    --samples TSV --phases TSV --meta JSON [--downloads JSON] [--verify JSON]
                              [--paging JSON] [--markdown FILE]

sample: every --interval seconds (default 0.1) one line: wall time, the daemon's VmRSS and VmHWM,
and for each child process of the daemon (the scan workers) pid:VmRSS:VmHWM, all in KiB. Runs
until the daemon exits or SIGTERM. With --cap-kb, the first sample above the cap writes --cap-file
(the download driver then stops its clients: a safety net for shared machines, not a target).

download: starts M `curl` processes at once, each writing the report to DIR/report-I.json with its
response headers beside it, and waits for all; records per client the exit status, HTTP status,
bytes, Content-Length and curl's time_total, and the wall time from the first start to the last
end. If the cap file appears, the remaining clients are killed (SIGTERM) and the run is marked.

verify: SHA-256 of every download (streamed), complete = curl exit 0, HTTP 200 and the file's size
equal to both Content-Length and curl's size_download; identical = one digest for all. Then counts
the report's `files` (and summary.files) from the first complete copy, and deletes the other copies.

page: GET /api/v1/reports/ID/files?limit=N, following next_cursor to the end; counts rows and pages.
"""

import argparse
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

# --------------------------------------------------------------------------------------------
# sampler


def read_status(pid):
    """(VmRSS, VmHWM) in KiB, or None when the process is gone (or is a zombie without memory)."""
    rss = hwm = None
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if rss is None:
        return None
    return rss, hwm or 0


def children_of(pid):
    """Child pids of pid. /proc/PID/task/TID/children lists each thread's children (the daemon forks
    workers from its worker-pool threads); without CONFIG_PROC_CHILDREN, scan /proc for the ppid."""
    kids = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return kids
    have_children_file = False
    for tid in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                have_children_file = True
                kids.extend(int(x) for x in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    if have_children_file:
        return kids
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        # The command name is in parentheses and may contain spaces: ppid is the 2nd field after ")".
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def cmd_sample(a):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    capped = False
    with open(a.out, "w", buffering=1) as out:
        out.write("t\tdaemon_rss_kb\tdaemon_hwm_kb\tchildren\n")
        while not stop:
            t = time.time()
            st = read_status(a.pid)
            if st is None:
                break
            kids = []
            for k in children_of(a.pid):
                ks = read_status(k)
                if ks is not None:
                    kids.append("%d:%d:%d" % (k, ks[0], ks[1]))
            out.write("%.3f\t%d\t%d\t%s\n" % (t, st[0], st[1], ",".join(kids)))
            if a.cap_kb and not capped and st[0] > a.cap_kb:
                capped = True
                with open(a.cap_file, "w") as f:
                    f.write("%.3f %d\n" % (t, st[0]))
            time.sleep(max(0.0, a.interval - (time.time() - t)))


# --------------------------------------------------------------------------------------------
# downloads


def cmd_download(a):
    url = a.url
    os.makedirs(a.dir, exist_ok=True)
    procs = []
    t0 = time.time()
    for i in range(a.count):
        body = os.path.join(a.dir, "report-%d.json" % i)
        head = os.path.join(a.dir, "headers-%d.txt" % i)
        p = subprocess.Popen(
            ["curl", "-sS", "-o", body, "-D", head, "-w", "%{http_code} %{size_download} %{time_total}"]
            + (["--limit-rate", a.limit_rate] if a.limit_rate else []) + [url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        procs.append({"i": i, "p": p, "start": time.time(), "body": body, "head": head})
    started = time.time()
    capped_at = None
    pending = set(range(a.count))
    while pending:
        for i in list(pending):
            if procs[i]["p"].poll() is not None:
                procs[i]["end"] = time.time()
                pending.discard(i)
        if pending and capped_at is None and a.cap_file and os.path.exists(a.cap_file):
            capped_at = time.time()
            for i in pending:
                procs[i]["p"].terminate()
        if pending:
            time.sleep(0.02)
    t1 = max(c["end"] for c in procs)
    clients = []
    for c in procs:
        outs, errs = c["p"].communicate()
        w = outs.decode(errors="replace").split()
        content_length = None
        if os.path.exists(c["head"]):
            with open(c["head"], encoding="latin-1") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k.strip().lower() == "content-length":
                        content_length = int(v.strip())
        clients.append({
            "i": c["i"], "exit": c["p"].returncode, "http": int(w[0]) if len(w) == 3 else None,
            "size_download": int(w[1]) if len(w) == 3 else None,
            "time_total": float(w[2]) if len(w) == 3 else None,
            "wall": c["end"] - c["start"], "content_length": content_length,
            "file_size": os.path.getsize(c["body"]) if os.path.exists(c["body"]) else None,
            "stderr": errs.decode(errors="replace").strip()[:300], "body": c["body"],
        })
    res = {"url": url, "count": a.count, "start": t0, "all_started": started, "end": t1,
           "total_seconds": t1 - t0, "capped_at": capped_at, "clients": clients}
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    bad = [c for c in clients if c["exit"] != 0 or c["http"] != 200]
    print("  %d downloads in %.1f s; %d failed%s" % (a.count, t1 - t0, len(bad),
                                                   " (stopped at the RSS cap)" if capped_at else ""))
    for c in bad[:5]:
        print("    client %d: curl exit %s, HTTP %s %s" % (c["i"], c["exit"], c["http"], c["stderr"]))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def cmd_verify(a):
    with open(a.downloads) as f:
        d = json.load(f)
    digests = {}
    complete = 0
    first_ok = None
    for c in d["clients"]:
        c["sha256"] = sha256_file(c["body"]) if c["file_size"] is not None else None
        c["complete"] = (c["exit"] == 0 and c["http"] == 200 and c["file_size"] is not None
                         and c["content_length"] == c["file_size"] == c["size_download"])
        if c["complete"]:
            complete += 1
            digests[c["sha256"]] = digests.get(c["sha256"], 0) + 1
            if first_ok is None:
                first_ok = c
    res = {"clients": len(d["clients"]), "complete": complete, "digests": digests,
           "identical": complete == len(d["clients"]) and len(digests) == 1,
           "report_bytes": first_ok["file_size"] if first_ok else None,
           "report_sha256": first_ok["sha256"] if first_ok else None,
           "report_files": None, "report_regular": None, "summary_files": None, "summary_directories": None,
           "summary_errors": None, "verdict": None}
    if first_ok is not None:
        with open(first_ok["body"], "rb") as f:
            rep = json.load(f)
        entries = rep.get("files", [])
        res["report_files"] = len(entries)
        res["report_regular"] = sum(1 for e in entries if e.get("type") == "regular")
        summ = rep.get("summary", {})
        res["summary_files"] = summ.get("files")
        res["summary_directories"] = summ.get("directories")
        res["summary_errors"] = summ.get("errors")
        res["verdict"] = rep.get("verdict")
        del rep
        os.replace(first_ok["body"], os.path.join(os.path.dirname(first_ok["body"]), "report.json"))
    for c in d["clients"]:
        if os.path.exists(c["body"]):
            os.remove(c["body"])
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print("  %d of %d downloads complete, %d distinct digest(s); report %s bytes, %s entries (%s regular files; "
          "summary: %s files, %s directories, %s errors)"
          % (complete, res["clients"], len(digests), res["report_bytes"], res["report_files"], res["report_regular"],
             res["summary_files"], res["summary_directories"], res["summary_errors"]))


# --------------------------------------------------------------------------------------------
# paging


def cmd_page(a):
    base = "%s/api/v1/reports/%s/files" % (a.url, a.id)
    rows = pages = 0
    cursor = None
    t0 = time.time()
    page_times = []
    biggest = 0
    while True:
        q = {"limit": str(a.limit)}
        if cursor is not None:
            q["cursor"] = cursor
        t = time.time()
        req = urllib.request.Request(base + "?" + urllib.parse.urlencode(q))
        if os.environ.get("BORDERSCAN_TOKEN"):  # bench/lib.sh's start_daemon sets it
            req.add_header("Authorization", "Bearer " + os.environ["BORDERSCAN_TOKEN"])
        with urllib.request.urlopen(req, timeout=300) as r:
            body = r.read()
        page_times.append(time.time() - t)
        biggest = max(biggest, len(body))
        page = json.loads(body)
        rows += len(page["items"])
        pages += 1
        cursor = page.get("next_cursor")
        if cursor is None:
            break
        if pages > 10_000_000:
            sys.exit("report_report: paging does not end")
    res = {"rows": rows, "pages": pages, "seconds": time.time() - t0, "limit": a.limit,
           "page_median_seconds": statistics.median(page_times), "page_max_seconds": max(page_times),
           "largest_page_bytes": biggest}
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print("  %d rows in %d pages, %.1f s" % (rows, pages, res["seconds"]))


# --------------------------------------------------------------------------------------------
# table


def mib(kb):
    return "%.1f" % (kb / 1024.0) if kb is not None else "–"


def load_samples(path):
    rows = []
    with open(path) as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            kids = []
            if len(parts) > 3 and parts[3]:
                for k in parts[3].split(","):
                    pid, rss, hwm = (int(x) for x in k.split(":"))
                    kids.append((pid, rss, hwm))
            rows.append((float(parts[0]), int(parts[1]), int(parts[2]), kids))
    return rows


def load_phases(path):
    marks = []
    with open(path) as f:
        for line in f:
            t, name = line.rstrip("\n").split("\t", 1)
            marks.append((float(t), name))
    return marks


def cmd_table(a):
    samples = load_samples(a.samples)
    marks = load_phases(a.phases)
    with open(a.meta) as f:
        meta = json.load(f)
    dl = vf = pg = None
    if a.downloads and os.path.exists(a.downloads):
        with open(a.downloads) as f:
            dl = json.load(f)
    if a.verify and os.path.exists(a.verify):
        with open(a.verify) as f:
            vf = json.load(f)
    if a.paging and os.path.exists(a.paging):
        with open(a.paging) as f:
            pg = json.load(f)
    if not samples:
        sys.exit("report_report: no RSS samples")

    # A phase runs from its mark to the next mark; "end" closes the last one.
    # after5 and after30 are points inside "after", not phases of their own.
    mark_t = dict((n, t) for t, n in marks)
    phase_marks = [(t, n) for t, n in marks if n not in ("after5", "after30")]
    spans = []
    for i, (t, name) in enumerate(phase_marks):
        if name == "end":
            break
        t_end = phase_marks[i + 1][0] if i + 1 < len(phase_marks) else samples[-1][0]
        if name == "scan":
            # The daemon takes the worker's report and stores it after the worker has exited: split
            # the scan at the first sample without a child process after the last one with one.
            last_kid = max((smp[0] for smp in samples if t <= smp[0] < t_end and smp[3]), default=None)
            later = [smp[0] for smp in samples if last_kid is not None and last_kid < smp[0] < t_end]
            if later:
                spans.append(("scan", t, later[0]))
                spans.append(("store", later[0], t_end))
                continue
        spans.append((name, t, t_end))

    def in_span(t0, t1):
        return [s for s in samples if t0 <= s[0] < t1]

    def at(t):  # the first sample at or after t (else the last one)
        for s in samples:
            if s[0] >= t:
                return s
        return samples[-1]

    idle = [s[1] for s in in_span(*[(t0, t1) for n, t0, t1 in spans if n == "idle"][0])] if any(
        n == "idle" for n, _, _ in spans) else []
    idle_kb = statistics.median(idle) if idle else samples[0][1]
    worker_hwm = {}
    for s in samples:
        for pid, rss, hwm in s[3]:
            worker_hwm[pid] = max(worker_hwm.get(pid, 0), hwm, rss)

    labels = {
        "idle": "idle, before upload", "upload": "upload", "scan": "scan (worker running)",
        "store": "store (worker gone, until status done)",
        "stored": "after store (report stored, nothing running)", "downloads": "%s concurrent downloads" % meta["clients"]
        + (" (≤ %s/s each)" % meta["limit_rate"] if meta.get("limit_rate") else ""),
        "after": "after downloads (30 s)", "paging": "paging /files (limit 1000)",
        "checks": "client-side checks (daemon idle)",
    }
    phase_rows = []
    overall_peak = 0
    for name, t0, t1 in spans:
        ss = in_span(t0, t1)
        if not ss:
            continue
        peak = max(s[1] for s in ss)
        overall_peak = max(overall_peak, peak)
        wk = [sum(k[1] for k in s[3]) for s in ss]
        wk_peak = max(wk) if wk else 0
        wk_hwm = max((k[2] for s in ss for k in s[3]), default=0)
        phase_rows.append((labels.get(name, name), t1 - t0, len(ss), peak, ss[-1][1], wk_peak, wk_hwm))

    after5 = at(mark_t["after5"])[1] if "after5" in mark_t else None
    after30 = at(mark_t["after30"])[1] if "after30" in mark_t else None
    stored = None
    if "downloads" in mark_t:
        before = [s for s in samples if s[0] < mark_t["downloads"]]
        stored = before[-1][1] if before else None
    hwm_end = samples[-1][2]

    L = []
    L.append("### Report benchmark (issue #12): %s files, %s clients%s" % (
        meta["files"], meta["clients"], ", each at most %s/s" % meta["limit_rate"] if meta.get("limit_rate") else ""))
    L.append("")
    L.append("`%s` on %s (%d cores, %s, %.1f GiB RAM), %s – %s UTC, load %s → %s. Daemon `%s` (%s), commit %s%s."
             % (meta["cmdline"], meta["host"], meta["nproc"], meta["cpu"], meta["mem_gib"], meta["start"],
                meta["end"], meta["load_before"], meta["load_after"], meta["version"], meta["binary"],
                meta["git_rev"], meta["git_dirty"]))
    L.append("")
    L.append("Image: %s. Config: %s." % (meta["image_desc"], meta["config_desc"]))
    L.append("")
    L.append("RSS sampled every %s s from `/proc/PID/status` (VmRSS; the worker = the daemon's child processes, "
             "summed), %d samples." % (meta["interval"], len(samples)))
    L.append("")
    L.append("| phase | seconds | samples | daemon peak RSS MiB | daemon RSS at end MiB | worker peak RSS MiB | worker VmHWM MiB |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for label, dur, n, peak, last, wpeak, whwm in phase_rows:
        L.append("| %s | %.1f | %d | %s | %s | %s | %s |" % (label, dur, n, mib(peak), mib(last),
                                                           mib(wpeak) if wpeak else "–", mib(whwm) if whwm else "–"))
    L.append("")
    L.append("| figure | value |")
    L.append("|---|---:|")
    L.append("| daemon idle RSS (median before upload) | %s MiB |" % mib(idle_kb))
    L.append("| daemon peak RSS, sampled (whole run) | %s MiB |" % mib(overall_peak))
    L.append("| daemon VmHWM at the end (kernel high-water mark: catches most spikes between samples) | %s MiB |" % mib(hwm_end))
    L.append("| daemon RSS after store (before downloads) | %s MiB |" % mib(stored))
    L.append("| daemon RSS 5 s after downloads | %s MiB |" % mib(after5))
    L.append("| daemon RSS 30 s after downloads | %s MiB |" % mib(after30))
    L.append("| worker peak RSS (VmHWM, largest worker) | %s MiB |" % mib(max(worker_hwm.values(), default=None)))
    # The kernel folds the current RSS into VmHWM only at some points (munmap, exit), so memory
    # returned another way (madvise) can leave VmHWM below a peak a sample saw: take the larger.
    L.append("| peak / idle (max of sampled peak and VmHWM, / idle) | %.1f |" % (max(hwm_end, overall_peak) / idle_kb))
    if after5 is not None:
        L.append("| after / idle, 5 s | %.2f |" % (after5 / idle_kb))
    if after30 is not None:
        L.append("| after / idle, 30 s | %.2f |" % (after30 / idle_kb))
    if "upload" in mark_t and "scan" in mark_t:
        L.append("| upload time | %.1f s (%.0f MB/s) |" % (mark_t["scan"] - mark_t["upload"],
                                                          meta["image_bytes"] / 1e6 / max(1e-9, mark_t["scan"] - mark_t["upload"])))
    if "scan" in mark_t and "stored" in mark_t:
        dur = mark_t["stored"] - mark_t["scan"]
        L.append("| scan time (upload answered → status done) | %.1f s (%.0f files/s) |" % (dur, meta["files"] / max(1e-9, dur)))
    L.append("| scan outcome | %s |" % meta.get("scan_outcome", "?"))
    if vf:
        L.append("| report size | %s bytes (%.1f MB) |" % (vf["report_bytes"], (vf["report_bytes"] or 0) / 1e6))
        L.append("| report entries (`files[]`) / regular files / summary files + directories | %s / %s / %s + %s |" % (
            vf["report_files"], vf["report_regular"], vf["summary_files"], vf["summary_directories"]))
    if dl:
        times = [c["time_total"] for c in dl["clients"] if c["time_total"] is not None]
        L.append("| downloads complete and identical | %s of %s complete, %d distinct SHA-256%s |" % (
            vf["complete"] if vf else "?", dl["count"], len(vf["digests"]) if vf else -1,
            "; **stopped at the RSS cap**" if dl.get("capped_at") else ""))
        if times:
            L.append("| download time per client, median / max | %.2f s / %.2f s |" % (statistics.median(times), max(times)))
        L.append("| all downloads, first start → last end | %.2f s |" % dl["total_seconds"])
        if vf and vf["report_bytes"]:
            L.append("| aggregate download rate | %.0f MB/s |" % (vf["report_bytes"] * vf["complete"] / 1e6 / dl["total_seconds"]))
    if pg:
        L.append("| paging /files?limit=%d | %d rows in %d pages, %.1f s (page median %.3f s, max %.3f s) |" % (
            pg["limit"], pg["rows"], pg["pages"], pg["seconds"], pg["page_median_seconds"], pg["page_max_seconds"]))
        if vf and vf["report_files"] is not None:
            L.append("| rows paged = report entries | %s |" % ("yes" if pg["rows"] == vf["report_files"] else
                                                          "**no** (%d vs %d)" % (pg["rows"], vf["report_files"])))
    if meta.get("problems"):
        L.append("| daemon log error/critical lines | %s |" % meta["problems"])
    text = "\n".join(L) + "\n"
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--interval", type=float, default=0.1)
    s.add_argument("--cap-kb", type=int, default=0)
    s.add_argument("--cap-file")
    s = sub.add_parser("download")
    s.add_argument("--url", required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--dir", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--cap-file")
    s.add_argument("--limit-rate")
    s = sub.add_parser("verify")
    s.add_argument("--downloads", required=True)
    s.add_argument("--out", required=True)
    s = sub.add_parser("page")
    s.add_argument("--url", required=True)
    s.add_argument("--id", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--limit", type=int, default=1000)
    s = sub.add_parser("table")
    s.add_argument("--samples", required=True)
    s.add_argument("--phases", required=True)
    s.add_argument("--meta", required=True)
    s.add_argument("--downloads")
    s.add_argument("--verify")
    s.add_argument("--paging")
    s.add_argument("--markdown")
    a = ap.parse_args()
    {"sample": cmd_sample, "download": cmd_download, "verify": cmd_verify, "page": cmd_page,
     "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    main()
