#!/usr/bin/env python3
"""Generates the file tree of the report benchmark's ext4 image (bench/report.sh builds the image).

    report_gen.py FILES SRCDIR SUMMARY_JSON

FILES small text files (a few KB each: notes, CSV, JSON, logs, Markdown, HTML, e-mails) in a
nested folder tree (depth up to 7, about 40 files per folder), with names that contain spaces,
accents, Cyrillic and Greek, and about 5 % byte-identical duplicates under other names ("Kopie
von …", "… (1).txt", backup folders). Everything comes from fixed seeds (random.Random with a
string seed is stable across Python versions and PYTHONHASHSEED), so the same FILES gives the same
bytes, names and modification times on every host. Nothing is taken from the host.

SUMMARY_JSON gets: files, dirs, bytes, distinct_bytes, duplicates, by_kind, block_bytes (the
files' size rounded up to 4 KiB blocks: what the image must hold), max_depth.
"""

import hashlib
import json
import math
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workload_gen import COMMON_WORDS  # noqa: E402

SEED = "borderscan-report-bench-v1"
FIXED_MTIME = 1672531200  # 2023-01-01T00:00:00Z; files get mtimes spread over 2023
DUPLICATE_SHARE = 0.05
FILES_PER_DIR = 40
MAX_DEPTH = 7

WORDS = (
    COMMON_WORDS +
    "please thanks regards kind best hello dear attached document file folder backup archive "
    "Zürich München Genève Kraków São Paulo Málaga Ångström café naïve résumé façade "
    "привет отчёт граница таможня груз Αθήνα λογαριασμός"
).split()
ASCII_WORDS = [w for w in WORDS if w.isascii()]
FIRST = "Anna Ben Carla David Emma Felix Greta Hugo Ines Jonas Klara Luca Mila Noah Olga Paul".split()
LAST = "Meier Schmid Keller Weber Huber Schneider Müller Fischer Brunner Baumann Frei Gerber".split()
CITIES = "Basel Bern Chiasso Genève Kreuzlingen Lugano Schaffhausen St.Gallen Zürich".split()

# Folder names: plain, with spaces, accents, Cyrillic, Greek; a number keeps siblings apart.
TOP_DIRS = [
    "Documents", "Desktop", "Downloads", "Mail", "Projekte", "Données clients", "Фото и отчёты",
    "Backup", "Users/anna/AppData/Local/Temp", "Έγγραφα", "Scans", "Shared with me",
]
DIR_WORDS = [
    "Rechnungen", "Invoices", "Notes", "Travel plans", "Réunions", "Verträge", "Lieferungen",
    "Отчёты", "Архив", "Προσφορές", "Clients", "old", "Entwürfe", "Exports", "Kunden Zürich",
    "Trip to Genève", "Q3 review", "Misc", "Logs", "Correspondance", "Überweisungen", "Bilder",
]
FILE_STEMS = [
    "Invoice", "Rechnung", "notes", "Protokoll Sitzung", "meeting minutes", "отчёт", "résumé final",
    "Lieferschein", "budget", "todo", "Reisekosten", "contrat signé", "export", "σημειώσεις",
    "shipment", "Zollanmeldung", "draft", "report", "Kontoauszug", "letter to Müller",
]


def words(rng, nbytes, vocab=WORDS):
    """Sentences of random words, about nbytes long (UTF-8)."""
    # Words average ~6 bytes with their space: draw a little more than needed, then cut at a word.
    ws = rng.choices(vocab, k=nbytes // 6 + 8)
    out, size, line = [], 0, []
    for w in ws:
        line.append(w)
        size += len(w.encode()) + 1
        if len(line) >= 12:
            out.append(" ".join(line).capitalize() + ".")
            line = []
        if size >= nbytes:
            break
    if line:
        out.append(" ".join(line) + ".")
    return "\n".join(out) + "\n"


def make_txt(rng, n):
    return words(rng, n).encode()


def make_md(rng, n):
    body = words(rng, max(n - 80, 40))
    return ("# %s %s\n\n## %s\n\n%s" % (rng.choice(FILE_STEMS), rng.randint(1, 99), rng.choice(DIR_WORDS),
                                        body)).encode()


def make_csv(rng, n):
    lines = ["id,date,name,city,amount,currency,reference"]
    size = 0
    i = 0
    while size < n:
        i += 1
        line = "%d,2023-%02d-%02d,%s %s,%s,%d.%02d,%s,REF-%08X" % (
            i, rng.randint(1, 12), rng.randint(1, 28), rng.choice(FIRST), rng.choice(LAST),
            rng.choice(CITIES), rng.randint(1, 99999), rng.randint(0, 99),
            rng.choice(["CHF", "EUR", "USD"]), rng.getrandbits(32))
        lines.append(line)
        size += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def make_json(rng, n):
    recs, size = [], 0
    while size < n:
        r = {"id": len(recs) + 1, "name": "%s %s" % (rng.choice(FIRST), rng.choice(LAST)),
             "city": rng.choice(CITIES), "score": round(rng.random() * 100, 3),
             "note": " ".join(rng.choices(WORDS, k=rng.randint(3, 10)))}
        recs.append(r)
        size += 120
    return json.dumps({"version": 1, "records": recs}, ensure_ascii=False, indent=1).encode()


def make_log(rng, n):
    out, size = [], 0
    while size < n:
        line = "2023-%02d-%02dT%02d:%02d:%02dZ %s %s[%d]: %s" % (
            rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59),
            rng.randint(0, 59), rng.choice(["gw01", "kiosk-3", "scan-a", "db2"]),
            rng.choice(["sshd", "kernel", "cron", "nginx", "systemd"]), rng.randint(100, 65000),
            " ".join(rng.choices(ASCII_WORDS, k=rng.randint(4, 12))))
        out.append(line)
        size += len(line) + 1
    return ("\n".join(out) + "\n").encode()


def make_html(rng, n):
    paras = "".join("<p>%s</p>\n" % words(rng, 300).strip() for _ in range(max(1, n // 320)))
    return ("<!DOCTYPE html>\n<html lang=\"de\"><head><meta charset=\"utf-8\"><title>%s</title></head>\n"
            "<body>\n<h1>%s</h1>\n%s</body></html>\n" % (rng.choice(FILE_STEMS), rng.choice(DIR_WORDS), paras)).encode()


def make_eml(rng, n):
    sender = "%s.%s@example.ch" % (rng.choice(FIRST).lower(), rng.choice(LAST).lower().replace("ü", "ue"))
    return ("From: %s\nTo: customs@example.ch\nSubject: %s %d\nDate: Mon, %d Jun 2023 10:%02d:00 +0200\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n%s"
            % (sender, rng.choice(FILE_STEMS), rng.randint(1, 999), rng.randint(1, 28), rng.randint(0, 59),
               words(rng, max(n - 200, 40)))).encode()


KINDS = [  # (kind, extension, share, generator)
    ("text", "txt", 0.36, make_txt),
    ("csv", "csv", 0.14, make_csv),
    ("json", "json", 0.12, make_json),
    ("log", "log", 0.12, make_log),
    ("markdown", "md", 0.10, make_md),
    ("html", "html", 0.08, make_html),
    ("mail", "eml", 0.08, make_eml),
]


def file_size(rng):
    """A few KB: lognormal, median ~2.5 KB, 200 B to 16 KB."""
    return int(min(16384, max(200, rng.lognormvariate(math.log(2500), 0.7))))


def build_dirs(rng, count):
    """count folders (relative paths): the top folders, then children of random earlier folders."""
    dirs = list(TOP_DIRS)
    names = set(d.lower() for d in dirs)
    while len(dirs) < count:
        parent = rng.choice(dirs)
        if parent.count("/") + 1 >= MAX_DEPTH:
            continue
        name = "%s/%s %d" % (parent, rng.choice(DIR_WORDS), rng.randint(1, 999))
        if rng.random() < 0.15:
            name = "%s/%d-%02d" % (parent, rng.randint(2019, 2023), rng.randint(1, 12))
        if name.lower() in names:
            continue
        names.add(name.lower())
        dirs.append(name)
    return dirs


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: report_gen.py FILES SRCDIR SUMMARY_JSON")
    nfiles = int(sys.argv[1])
    if nfiles < 1:
        sys.exit("report_gen: FILES must be at least 1")
    root, summary_path = sys.argv[2], sys.argv[3]
    if os.path.exists(root):
        sys.exit("report_gen: %s exists" % root)

    rng = random.Random(SEED)
    mrng = random.Random(SEED + ":mtime")
    ndirs = max(len(TOP_DIRS), nfiles // FILES_PER_DIR)
    dirs = build_dirs(random.Random(SEED + ":dirs"), ndirs)
    for d in dirs:
        os.makedirs(os.path.join(root, d))

    kinds = [k for k in KINDS]
    weights = [k[2] for k in KINDS]
    originals = []  # (rel, data) of generated files, to copy from
    by_kind = {}
    total = distinct = dups = blocks = 0
    used = set()

    def put(rel, data, kind):
        nonlocal total, blocks
        full = os.path.join(root, rel)
        with open(full, "wb") as f:
            f.write(data)
        t = FIXED_MTIME + 2 * mrng.randrange(0, 365 * 43200)
        os.utime(full, (t, t))
        total += len(data)
        blocks += (len(data) + 4095) // 4096
        by_kind[kind] = by_kind.get(kind, 0) + 1

    for i in range(nfiles):
        d = rng.choice(dirs)
        if originals and rng.random() < DUPLICATE_SHARE:
            src_rel, data = rng.choice(originals)
            stem, ext = os.path.splitext(os.path.basename(src_rel))
            style = rng.randrange(3)
            if style == 0:
                name = "Kopie von %s%s" % (stem, ext)
            elif style == 1:
                name = "%s (%d)%s" % (stem, rng.randint(1, 9), ext)
            else:
                name = "%s%s" % (stem, ext)
                d = "Backup/%s" % os.path.dirname(src_rel).replace("/", " - ")
                os.makedirs(os.path.join(root, d), exist_ok=True)
            rel = "%s/%s" % (d, name)
            if rel.lower() in used:
                rel = "%s/%s #%d%s" % (d, stem, i, ext)
            used.add(rel.lower())
            put(rel, data, "duplicate")
            dups += 1
            continue
        kind, ext, _, gen = rng.choices(kinds, weights)[0]
        stem = rng.choice(FILE_STEMS)
        style = rng.randrange(4)
        if style == 0:
            name = "%s %05d.%s" % (stem, i, ext)
        elif style == 1:
            name = "%s_%d-%02d-%02d_%05d.%s" % (stem.replace(" ", "_"), rng.randint(2019, 2023),
                                               rng.randint(1, 12), rng.randint(1, 28), i, ext)
        elif style == 2:
            name = "%s %s %05d.%s" % (rng.choice(FIRST), stem, i, ext)
        else:
            name = "%05d %s (%s).%s" % (i, stem, rng.choice(CITIES), ext)
        rel = "%s/%s" % (d, name)
        used.add(rel.lower())
        data = gen(rng, file_size(rng))
        put(rel, data, kind)
        distinct += len(data)
        # Keep a bounded sample to copy from, so memory stays small at any FILES.
        if len(originals) < 5000:
            originals.append((rel, data))
        elif rng.random() < 0.01:
            originals[rng.randrange(len(originals))] = (rel, data)

    # Folder mtimes last (writing files changed them).
    all_dirs = sorted({os.path.relpath(p, root) for p, _, _ in os.walk(root)} - {"."})
    for d in all_dirs:
        os.utime(os.path.join(root, d), (FIXED_MTIME, FIXED_MTIME))
    os.utime(root, (FIXED_MTIME, FIXED_MTIME))

    summary = {
        "generator": SEED, "files": nfiles, "dirs": len(all_dirs), "bytes": total, "distinct_bytes": distinct,
        "duplicates": dups, "by_kind": dict(sorted(by_kind.items())), "block_bytes": blocks * 4096,
        "max_depth": max(d.count("/") + 1 for d in all_dirs),
    }
    with open(summary_path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
