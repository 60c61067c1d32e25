#!/usr/bin/env python3
"""Summarises a bench/compare.sh run: statistics, ratios, detection check, Markdown block.

    compare_report.py TMPDIR SET...

TMPDIR is compare.sh's work folder: meta.env, times.tsv (round, label, wall_ns, maxrss_kb, user_s,
sys_s) and out/ (borderscan reports, peer yara/sha256sum output). Round 0 rows (warm-up) are
ignored. Exit status 0 even when detections are missed: the misses are printed and in the block.
"""

import json
import os
import statistics
import sys
from collections import defaultdict

PEER_STAGES = ["tsk_recover", "yara", "file", "md5sum", "sha1sum", "sha256sum"]
TARGET_SPEEDUP = {"shipped": 3.0, "public": 2.0}
TARGET_BOUND = 1.3


def load_meta(tmp):
    meta = {}
    with open(os.path.join(tmp, "meta.env"), encoding="utf-8") as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v
    return meta


def load_times(tmp, clk_tck):
    """label -> round -> (wall_s, rss_kb, cpu_s, others_cpu_s). others_cpu_s is the CPU time the
    whole machine was busy during the command minus the command's own (other people's work)."""
    rows = defaultdict(dict)
    with open(os.path.join(tmp, "times.tsv"), encoding="utf-8") as f:
        for line in f:
            rnd, label, wall_ns, rss, usr, sys_, busy = line.rstrip("\n").split("\t")
            if int(rnd) == 0:
                continue
            cpu = float(usr) + float(sys_)
            others = max(0.0, int(busy) / clk_tck - cpu)
            rows[label][int(rnd)] = (int(wall_ns) / 1e9, int(rss), cpu, others)
    return rows


def peer_rounds(rows, s):
    """Per round: (total wall, max rss, total cpu, total others' cpu) over the peer's stages."""
    out = {}
    rounds = set.intersection(*(set(rows["peer-%s:%s" % (s, st)]) for st in PEER_STAGES))
    for r in sorted(rounds):
        vals = [rows["peer-%s:%s" % (s, st)][r] for st in PEER_STAGES]
        out[r] = (sum(v[0] for v in vals), max(v[1] for v in vals), sum(v[2] for v in vals),
                  sum(v[3] for v in vals))
    return out


def stats(per_round):
    walls = [v[0] for v in per_round.values()]
    return dict(median=statistics.median(walls), min=min(walls), max=max(walls),
                rss=max(v[1] for v in per_round.values()),
                cpu=statistics.median(v[2] for v in per_round.values()),
                cores=statistics.median(v[2] / v[0] for v in per_round.values()),
                others=statistics.median(v[3] / v[0] for v in per_round.values()), n=len(walls))


def bound_rounds(rows, s, nproc):
    parts = ["bound:openssl-md5", "bound:openssl-sha1", "bound:openssl-sha256", "bound:yara-" + s]
    rounds = set.intersection(*(set(rows[p]) for p in parts))
    return ({r: sum(rows[p][r][0] for p in parts) / nproc for r in sorted(rounds)},
            {r: sum(rows[p][r][2] for p in parts) for r in sorted(rounds)})


def read_lines(path):
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return [l.rstrip("\n") for l in f if l.strip()]


def unescape_sum_line(line):
    """coreutils *sum: 'HASH  PATH', or '\\HASH  PATH' with \\\\ and \\n escaped in PATH."""
    esc = line.startswith("\\")
    if esc:
        line = line[1:]
    digest, _, path = line.partition("  ")
    if esc:
        path = path.replace("\\n", "\n").replace("\\\\", "\\")
    return digest, path


def bs_escape(path):
    """Borderscan writes bytes that are not UTF-8 as \\xHH and a backslash as \\\\."""
    out = []
    for ch in path:
        if "\udc80" <= ch <= "\udcff":  # undecodable byte kept by surrogateescape
            out.append("\\x%02x" % (ord(ch) - 0xDC00))
        elif ch == "\\":
            out.append("\\\\")
        else:
            out.append(ch)
    return "".join(out)


def detections(tmp, s, rounds_bs, rounds_peer):
    """Every (path, rule) the peer's yara reports must be a yara finding of borderscan's."""
    out_dir = os.path.join(tmp, "out")
    prefix_file = os.path.join(out_dir, "peer.prefix")
    prefix = read_lines(prefix_file)[0].rstrip("/") if os.path.exists(prefix_file) else ""
    peer = {}       # round -> set((path, rule))
    peer_sha = {}   # path -> sha256 (recovered content)
    for r in rounds_peer:
        hits = set()
        for line in read_lines(os.path.join(out_dir, "peer-%s.yara.%d.txt" % (s, r))):
            rule, _, path = line.partition(" ")
            if path.startswith(prefix + "/"):
                path = path[len(prefix):]
            hits.add((bs_escape(path), rule))
        peer[r] = hits
        for line in read_lines(os.path.join(out_dir, "peer-%s.sha256sum.%d.txt" % (s, r))):
            digest, path = unescape_sum_line(line)
            if path.startswith(prefix + "/"):
                peer_sha[bs_escape(path[len(prefix):])] = digest
    bs = {}
    bs_files = {}
    bs_by_sha = defaultdict(set)
    files_count = {}
    for r in rounds_bs:
        with open(os.path.join(out_dir, "borderscan-%s.%d.json" % (s, r)), encoding="utf-8") as f:
            rep = json.load(f)
        bs[r] = {(fd["path"], fd["rule"]) for fd in rep["findings"] if fd["source"] == "yara"}
        files_count[r] = rep["summary"]["files"]
        if not bs_files:
            for fe in rep["files"]:
                bs_files[fe["path"]] = fe
                if fe.get("sha256"):
                    bs_by_sha[fe["sha256"]].add(fe["path"])
            verdict = rep["verdict"]
            errors = rep["errors"]
            limits = rep["limits_hit"]
    peer_all = set().union(*peer.values()) if peer else set()
    bs_all = set().union(*bs.values()) if bs else set()
    bs_common = set.intersection(*bs.values()) if bs else set()
    misses, by_content = [], []
    bs_rules_at = defaultdict(set)
    for p, rule in bs_common:
        bs_rules_at[p].add(rule)
    for path, rule in sorted(peer_all):
        if (path, rule) in bs_common:
            continue
        sha = peer_sha.get(path)
        others = [p for p in bs_by_sha.get(sha, ()) if rule in bs_rules_at.get(p, ())] if sha else []
        if others:
            by_content.append((path, rule, sorted(others)[0]))
            continue
        if (path, rule) in bs_all:
            why = "found in some borderscan rounds only"
        elif path not in bs_files:
            why = "file not in borderscan's report"
            if sha and bs_by_sha.get(sha):
                why += " (same content at %s, without this rule)" % sorted(bs_by_sha[sha])[0]
        else:
            fe = bs_files[path]
            why = "file in report (size %s, bytes_read %s, deleted %s), rule not matched; its rules: %s" % (
                fe.get("size"), fe.get("bytes_read"), fe.get("deleted"),
                ", ".join(sorted(bs_rules_at.get(path, ()))) or "none")
        misses.append((path, rule, why))
    top_only = sorted((p, r) for p, r in bs_common - peer_all if "!" not in p)
    member_only = sorted((p, r) for p, r in bs_common - peer_all if "!" in p)
    return dict(peer_pairs=len(peer_all), peer_files=len({p for p, _ in peer_all}),
                bs_pairs=len(bs_common), misses=misses, by_content=by_content,
                bs_top_only=top_only, bs_member_only=member_only,
                peer_unstable=len({frozenset(v) for v in peer.values()}) > 1,
                bs_unstable=len({frozenset(v) for v in bs.values()}) > 1,
                files=statistics.median(files_count.values()) if files_count else 0,
                verdict=verdict if bs else None, errors=errors if bs else [],
                limits=limits if bs else [])


def fmt(x, nd=2):
    return "%.*f" % (nd, x)


def speed(ratio):
    """'0.40 (2.5× faster)' or '1.30 (1.3× slower)' for a borderscan/other time ratio."""
    if ratio <= 1:
        return "%s (%s× faster)" % (fmt(ratio), fmt(1 / ratio, 1))
    return "%s (%s× slower)" % (fmt(ratio), fmt(ratio, 1))


def main():
    tmp, sets = sys.argv[1], sys.argv[2:]
    meta = load_meta(tmp)
    rows = load_times(tmp, int(meta["clk_tck"]))
    nproc = int(meta["nproc"])
    jobs = meta["jobs"]
    size = int(meta["image_bytes"])
    mb = size / 1e6

    table = []  # (label, stats, files)

    def add(label, st, files=None, indent=False):
        table.append((("&nbsp;&nbsp;" if indent else "") + label, st, files))

    det = {}
    ratios = {}
    peer_files = {}
    for s in sets:
        bs_label = "borderscan-%s" % s
        pr = peer_rounds(rows, s)
        counts = []
        for r in pr:
            p = os.path.join(tmp, "out", "peer-%s.count.%d.txt" % (s, r))
            if os.path.exists(p):
                counts.append(int(read_lines(p)[0]))
        peer_files[s] = statistics.median(counts) if counts else 0
        det[s] = detections(tmp, s, sorted(rows[bs_label]), sorted(pr))
        bs_st = stats(rows[bs_label])
        peer_st = stats(pr)
        add("borderscan, %s rules (--jobs %s)" % (s, jobs), bs_st, det[s]["files"])
        j1 = "borderscan-%s-j1" % s
        if rows.get(j1):
            add("borderscan, %s rules (--jobs 1)" % s, stats(rows[j1]), det[s]["files"])
        compiling = "borderscan-%s-compiling" % s
        if rows.get(compiling):
            add("borderscan, %s rules, compiling them every run" % s, stats(rows[compiling]), det[s]["files"])
        nounalloc = "borderscan-%s-nounalloc" % s
        if rows.get(nounalloc):
            add("borderscan, %s rules, unallocated space not scanned" % s, stats(rows[nounalloc]),
                det[s]["files"])
        add("peer pipeline, %s rules (sum of stages)" % s, peer_st, peer_files[s])
        for st in PEER_STAGES:
            add(st if st != "yara" else "yara -r -p %s" % jobs,
                stats(rows["peer-%s:%s" % (s, st)]), None, indent=True)
        br, bcpu = bound_rounds(rows, s, nproc)
        bound_med = statistics.median(br.values())
        paired_peer = [rows[bs_label][r][0] / pr[r][0] for r in pr if r in rows[bs_label]]
        paired_bound = [rows[bs_label][r][0] / br[r] for r in br if r in rows[bs_label]]
        ratios[s] = dict(
            bs_peer=bs_st["median"] / peer_st["median"],
            bs_peer_paired=statistics.median(paired_peer),
            bound=bound_med,
            bs_bound=bs_st["median"] / bound_med,
            bs_bound_paired=statistics.median(paired_bound),
            scaling=(stats(rows[j1])["median"] / bs_st["median"]) if rows.get(j1) else None,
            precompiled=(bs_st["median"] / stats(rows[compiling])["median"]) if rows.get(compiling) else None,
            unallocated=(bs_st["median"] / stats(rows[nounalloc])["median"]) if rows.get(nounalloc) else None,
            unallocated_cpu=(bs_st["cpu"] / stats(rows[nounalloc])["cpu"]) if rows.get(nounalloc) else None,
            yarac=stats(rows["yarac-%s" % s])["median"],
            cpu_peer=bs_st["cpu"] / peer_st["cpu"],
            cpu_bound=bs_st["cpu"] / statistics.median(bcpu.values()),
            bound_cpu=statistics.median(bcpu.values()),
        )
    for label, name in [("bound:cat", "bound: cat IMAGE >/dev/null"),
                        ("bound:openssl-md5", "bound: openssl md5 IMAGE"),
                        ("bound:openssl-sha1", "bound: openssl sha1 IMAGE"),
                        ("bound:openssl-sha256", "bound: openssl sha256 IMAGE")]:
        add(name, stats(rows[label]))
    for s in sets:
        add("bound: yara IMAGE (%s rules)" % s, stats(rows["bound:yara-%s" % s]))
    for s in sets:
        add("yarac, %s rules (not counted in peer or bound)" % s, stats(rows["yarac-%s" % s]))

    all_others = [v[3] / v[0] for lab in rows for v in rows[lab].values() if v[0] >= 0.5]
    others_med = statistics.median(all_others) if all_others else 0.0
    if others_med >= 0.2:
        shared = ("**shared: other users' jobs took %.2f of the %d cores** (median over the "
                  "commands; see the last column)" % (others_med, nproc))
    else:
        shared = ("shared with other users, but quiet during this run (their jobs took %.2f "
                  "cores, median over the commands)" % others_med)
    name = os.path.basename(meta["image"])
    out = []
    out.append("<!-- compare.sh result begin -->")
    out.append("### %s: %.0f MB, %d files in borderscan's report, %d recovered by tsk_recover" % (
        name, mb, det[sets[0]]["files"], peer_files[sets[0]]))
    out.append("")
    out.append("Measured %s to %s with `%s`. Machine: %s cores (%s), %.1f GiB RAM, %s "
               "(load average %s at the start, %s at the end). %s rounds, contenders alternating (odd rounds forward, even rounds reversed); "
               "jobs %s; peer hashing/file %s. Tools: %s; %s; %s; %s; %s." % (
                   meta["started"], meta["finished"], meta.get("cmdline", "bench/compare.sh"),
                   meta["nproc"], meta["cpu"], int(meta["mem_total_kb"]) / 1048576, shared,
                   meta["load_start"], meta["load_end"], meta["runs"], jobs,
                   "with xargs -P %s -n 64" % jobs if meta["peer_parallel"] == "1" else "one process at a time (xargs -0)",
                   meta["borderscan_version"], meta["yara_version"] and "yara " + meta["yara_version"],
                   meta["tsk_version"], meta["openssl_version"], meta["file_version"]))
    out.append("")
    out.append("| contender | median s | min s | max s | MB/s | files/s | peak RSS MB | CPU s | cores used | others' cores |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, st, files in table:
        fps = fmt(files / st["median"], 0) if files else ""
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, fmt(st["median"]), fmt(st["min"]), fmt(st["max"]), fmt(mb / st["median"], 0),
            fps, fmt(st["rss"] / 1024, 0), fmt(st["cpu"], 1), fmt(st["cores"]), fmt(st["others"])))
    out.append("")
    out.append("MB/s = image bytes / median wall time; files/s = files in borderscan's report "
               "(archive members included) or files recovered by tsk_recover (peer); peak RSS = "
               "GNU time %%M (peer: its largest stage); CPU s = user + sys; cores used = CPU s / "
               "wall s; others' cores = CPU time the rest of the machine used during the command "
               "(/proc/stat busy time minus the command's own) / wall s, i.e. how many of the "
               "%d cores other people's jobs took (medians over the rounds)." % nproc)
    out.append("")
    hdr = "| ratio (medians of this run) | " + " | ".join("%s rules" % s for s in sets) + " | target |"
    out.append(hdr)
    out.append("|---|" + "---:|" * len(sets) + "---|")

    def row(title, vals, target):
        out.append("| %s | %s | %s |" % (title, " | ".join(vals), target))
    row("borderscan / peer (time)",
        [speed(ratios[s]["bs_peer"]) for s in sets],
        "≤ 0.33 shipped (3×), ≤ 0.50 public (2×)")
    row("borderscan / peer, median of per-round ratios", [fmt(ratios[s]["bs_peer_paired"]) for s in sets], "")
    row("bound = (openssl md5 + sha1 + sha256 + yara IMAGE) / %d cores, s" % nproc,
        [fmt(ratios[s]["bound"]) for s in sets], "")
    row("borderscan / bound", [fmt(ratios[s]["bs_bound"]) for s in sets], "≤ %.1f" % TARGET_BOUND)
    row("borderscan / bound, median of per-round ratios", [fmt(ratios[s]["bs_bound_paired"]) for s in sets], "")
    row("CPU time: borderscan / peer", [fmt(ratios[s]["cpu_peer"]) for s in sets], "")
    row("CPU time: borderscan / bound (md5 + sha1 + sha256 + yara IMAGE = %s s)" %
        " / ".join(fmt(ratios[s]["bound_cpu"], 1) for s in sets),
        [fmt(ratios[s]["cpu_bound"]) for s in sets], "")
    if any(ratios[s]["precompiled"] for s in sets):
        row("borderscan with compiled rules / compiling them (time)",
            [fmt(ratios[s]["precompiled"]) if ratios[s]["precompiled"] else "" for s in sets], "")
    if any(ratios[s]["unallocated"] for s in sets):
        row("borderscan / borderscan without the unallocated look (time; CPU time): its cost",
            ["%s; CPU %s" % (fmt(ratios[s]["unallocated"]), fmt(ratios[s]["unallocated_cpu"]))
             if ratios[s]["unallocated"] else "" for s in sets], "")
    if any(ratios[s]["scaling"] for s in sets):
        row("borderscan --jobs 1 / --jobs %s (time)" % jobs,
            [fmt(ratios[s]["scaling"]) if ratios[s]["scaling"] else "" for s in sets], "close to %s" % jobs)
    out.append("")
    for s in sets:
        d = det[s]
        line = ("Detections, %s rules: the peer's yara flags %d (file, rule) pairs on %d files; "
                "borderscan makes %d yara findings (every round). " % (
                    s, d["peer_pairs"], d["peer_files"], d["bs_pairs"]))
        if d["misses"]:
            line += "**%d missed by borderscan:**" % len(d["misses"])
        else:
            line += "**No peer detection is missed by borderscan.**"
        if d["by_content"]:
            line += " (%d matched by content under another path)" % len(d["by_content"])
        line += " Borderscan-only: %d on top-level files, %d on archive members." % (
            len(d["bs_top_only"]), len(d["bs_member_only"]))
        if d["peer_unstable"] or d["bs_unstable"]:
            line += " Warning: detections differed between rounds (%s)." % (
                ", ".join(x for x, y in (("peer", d["peer_unstable"]), ("borderscan", d["bs_unstable"])) if y))
        line += " Verdict `%s`, %d errors, %d limits hit." % (d["verdict"], len(d["errors"]), len(d["limits"]))
        out.append(line)
        for path, rule, why in d["misses"]:
            out.append("- MISS `%s` `%s`: %s" % (path, rule, why))
        for path, rule, other in d["by_content"][:10]:
            out.append("- by content: `%s` `%s` (borderscan: `%s`)" % (path, rule, other))
        out.append("")
    out.append("<!-- compare.sh result end -->")

    # Human extras (not in the block): borderscan-only detections, errors.
    extra = []
    for s in sets:
        d = det[s]
        if d["bs_top_only"]:
            extra.append("borderscan-only yara findings on top-level files, %s rules (first 15):" % s)
            extra += ["  %s  %s" % pr for pr in d["bs_top_only"][:15]]
        if d["errors"]:
            extra.append("borderscan report errors, %s rules (first 10):" % s)
            extra += ["  %s: %s: %s" % (e.get("path"), e.get("code"), e.get("message")) for e in d["errors"][:10]]
    print("\n".join(out))
    if extra:
        print()
        print("\n".join(extra))


if __name__ == "__main__":
    main()
