"""What the benchmark scripts record about the machine they ran on."""
import os
import socket


def machine():
    """nproc, cpu model, memory (GiB) and host name of this machine."""
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(next(l for l in f if l.startswith("MemTotal:")).split()[1])
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gib": mem_kb / 2**20, "host": socket.gethostname()}
