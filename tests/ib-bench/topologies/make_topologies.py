#!/usr/bin/python3
"""Writes the hwloc 2 XML topologies the ib-bench tests load (hwloc_topology_set_xml).

They are hand-built descriptions of real layouts, not exports, so every expected classification
in tests/ib-bench/topology_test.cc can be read off this file:

two-socket-8gpu-4nic.xml  a 2-socket, 8-GPU (H100 SXM ids), 4-NIC (ConnectX-7) node:
  socket 0 / NUMA 0: host bridge 0000:[00-1f]: PCIe switch SW0 with GPU0 (03:00.0), GPU1 (04:00.0), mlx5_0 (05:00.0)
                     host bridge 0000:[20-3f]: switch SW1 with GPU2 (23:00.0), GPU3 (24:00.0); below a
                                              second-level switch: mlx5_1 (27:00.0)
                     host bridge 0000:[40-4f]: onboard Ethernet eno1 (41:00.0, no RDMA)
  socket 1 / NUMA 1: host bridge 0000:[80-9f]: switch SW2 with GPU4 (83:00.0), GPU5 (84:00.0), mlx5_2 (85:00.0)
                     host bridge 0000:[a0-bf]: switch SW3 with GPU6 (a3:00.0), GPU7 (a4:00.0), no NIC
                     host bridge 0000:[c0-df]: mlx5_3 (c1:00.0) on a root port
  Expected: GPU0,1 -> mlx5_0 PIX; GPU2,3 -> mlx5_1 PXB; GPU4,5 -> mlx5_2 PIX; GPU6,7 -> mlx5_3 NODE
  (mlx5_2 is as close, NODE, but already serves GPU4 and GPU5).
simple-1gpu-1nic.xml      one socket, one host bridge with a GPU and a NIC on separate root ports: PHB.
no-gpu-vm.xml             a 2-vCPU virtual machine with virtio devices only (no GPU, no RDMA NIC).

Regenerate with: /usr/bin/python3 make_topologies.py (from this directory).
"""
import itertools

gp = itertools.count(1)


def attrs(**kw):
    return " ".join(f'{k}="{v}"' for k, v in kw.items())


def mask(bits):
    v = 0
    for b in bits:
        v |= 1 << b
    return f"0x{v:08x}"


class X:
    def __init__(self):
        self.lines = []
        self.depth = 0

    def open(self, tag, **kw):
        self.lines.append("  " * self.depth + f"<{tag} {attrs(**kw)}>")
        self.depth += 1

    def close(self, tag):
        self.depth -= 1
        self.lines.append("  " * self.depth + f"</{tag}>")

    def leaf(self, tag, **kw):
        self.lines.append("  " * self.depth + f"<{tag} {attrs(**kw)}/>")


def cpu_objects(x, cpus, node):
    for c in cpus:
        x.open("object", type="Core", os_index=c, cpuset=mask([c]), complete_cpuset=mask([c]), nodeset=mask([node]),
               complete_nodeset=mask([node]), gp_index=next(gp))
        x.leaf("object", type="PU", os_index=c, cpuset=mask([c]), complete_cpuset=mask([c]), nodeset=mask([node]),
               complete_nodeset=mask([node]), gp_index=next(gp))
        x.close("object")


def host_bridge(x, first, last):
    x.open("object", type="Bridge", gp_index=next(gp), bridge_type="0-1", depth=0, bridge_pci=f"0000:[{first:02x}-{last:02x}]")


def bridge(x, busid, first, last, depth, pci_id="8086:347a", rev="04"):
    x.open("object", type="Bridge", gp_index=next(gp), bridge_type="1-1", depth=depth,
           bridge_pci=f"0000:[{first:02x}-{last:02x}]", pci_busid=busid, pci_type=f"0604 [{pci_id}] [0000:0000] {rev}",
           pci_link_speed="31.507692")


def pcidev(x, busid, cls, pci_id, sub, rev="00", osdevs=()):
    if not osdevs:
        x.leaf("object", type="PCIDev", gp_index=next(gp), pci_busid=busid, pci_type=f"{cls} [{pci_id}] [{sub}] {rev}",
               pci_link_speed="31.507692")
        return
    x.open("object", type="PCIDev", gp_index=next(gp), pci_busid=busid, pci_type=f"{cls} [{pci_id}] [{sub}] {rev}",
           pci_link_speed="31.507692")
    for name, kind, subtype in osdevs:
        kw = dict(type="OSDev", gp_index=next(gp), name=name, osdev_type=kind)
        if subtype:
            kw["subtype"] = subtype
        x.leaf("object", **kw)
    x.close("object")


def gpu(x, busid, cuda):
    pcidev(x, busid, "0302", "10de:2330", "10de:16c1", "a1", [(f"cuda{cuda}", 5, "CUDA")])


def nic(x, busid, name):
    pcidev(x, busid, "0207", "15b3:1021", "15b3:0041", "00", [(name, 3, "OpenFabrics")])


def switch(x, bus, devices, depth=1):
    """A root port, a switch upstream port and one downstream port per device; devices are
    callables taking (x, busid) or ('switch', [...]) for a second-level switch."""
    up_bus = bus + 1
    span = 3 + 4 * len(devices)
    bridge(x, f"0000:{bus - 1:02x}:01.0", bus, bus + span, depth)                          # root port
    bridge(x, f"0000:{bus:02x}:00.0", up_bus, bus + span, depth + 1, "1000:c010", "b0")   # switch upstream
    for i, dev in enumerate(devices):
        dev_bus = bus + 2 + i
        bridge(x, f"0000:{up_bus:02x}:{i:02x}.0", dev_bus, dev_bus, depth + 2, "1000:c010", "b0")  # downstream port
        dev(x, f"0000:{dev_bus:02x}:00.0")
        x.close("object")
    x.close("object")
    x.close("object")


def header(x, cpus, nodes):
    x.lines += ['<?xml version="1.0" encoding="UTF-8"?>', '<!DOCTYPE topology SYSTEM "hwloc2.dtd">', '<topology version="2.0">']
    x.depth = 1
    x.open("object", type="Machine", os_index=0, cpuset=mask(cpus), complete_cpuset=mask(cpus), allowed_cpuset=mask(cpus),
           nodeset=mask(nodes), complete_nodeset=mask(nodes), allowed_nodeset=mask(nodes), gp_index=next(gp))


def footer(x):
    x.close("object")
    x.lines.append("</topology>")
    return "\n".join(x.lines) + "\n"


def package(x, index, cpus, memory):
    x.open("object", type="Package", os_index=index, cpuset=mask(cpus), complete_cpuset=mask(cpus), nodeset=mask([index]),
           complete_nodeset=mask([index]), gp_index=next(gp))
    x.leaf("object", type="NUMANode", os_index=index, cpuset=mask(cpus), complete_cpuset=mask(cpus), nodeset=mask([index]),
           complete_nodeset=mask([index]), gp_index=next(gp), local_memory=memory)
    cpu_objects(x, cpus, index)


def two_socket():
    x = X()
    header(x, range(16), [0, 1])
    package(x, 0, range(0, 8), 1099511627776)
    host_bridge(x, 0x00, 0x1f)
    switch(x, 0x01, [lambda x, b: gpu(x, "0000:03:00.0", 0), lambda x, b: gpu(x, "0000:04:00.0", 1),
                     lambda x, b: nic(x, "0000:05:00.0", "mlx5_0")])
    x.close("object")
    host_bridge(x, 0x20, 0x3f)
    # SW1: GPU2, GPU3 and a second-level switch holding mlx5_1.
    bridge(x, "0000:20:01.0", 0x21, 0x2f, 1)
    bridge(x, "0000:21:00.0", 0x22, 0x2f, 2, "1000:c010", "b0")
    for i, (busid, cuda) in enumerate([("0000:23:00.0", 2), ("0000:24:00.0", 3)]):
        bridge(x, f"0000:22:{i:02x}.0", 0x23 + i, 0x23 + i, 3, "1000:c010", "b0")
        gpu(x, busid, cuda)
        x.close("object")
    bridge(x, "0000:22:02.0", 0x25, 0x27, 3, "1000:c010", "b0")
    bridge(x, "0000:25:00.0", 0x26, 0x27, 4, "10b5:8747", "ca")
    bridge(x, "0000:26:00.0", 0x27, 0x27, 5, "10b5:8747", "ca")
    nic(x, "0000:27:00.0", "mlx5_1")
    for _ in range(3):
        x.close("object")  # second-level switch ports and SW1's downstream port
    x.close("object")  # SW1 upstream port
    x.close("object")  # root port
    x.close("object")  # host bridge
    host_bridge(x, 0x40, 0x4f)
    bridge(x, "0000:40:01.0", 0x41, 0x41, 1)
    pcidev(x, "0000:41:00.0", "0200", "8086:1563", "8086:0001", "01", [("eno1", 2, None)])
    x.close("object")
    x.close("object")
    x.close("object")  # package 0
    package(x, 1, range(8, 16), 1099511627776)
    host_bridge(x, 0x80, 0x9f)
    switch(x, 0x81, [lambda x, b: gpu(x, "0000:83:00.0", 4), lambda x, b: gpu(x, "0000:84:00.0", 5),
                     lambda x, b: nic(x, "0000:85:00.0", "mlx5_2")])
    x.close("object")
    host_bridge(x, 0xa0, 0xbf)
    switch(x, 0xa1, [lambda x, b: gpu(x, "0000:a3:00.0", 6), lambda x, b: gpu(x, "0000:a4:00.0", 7)])
    x.close("object")
    host_bridge(x, 0xc0, 0xdf)
    bridge(x, "0000:c0:01.0", 0xc1, 0xc1, 1)
    nic(x, "0000:c1:00.0", "mlx5_3")
    x.close("object")
    x.close("object")
    x.close("object")  # package 1
    return footer(x)


def simple():
    x = X()
    header(x, range(4), [0])
    package(x, 0, range(4), 68719476736)
    host_bridge(x, 0x00, 0x0f)
    bridge(x, "0000:00:01.0", 0x01, 0x01, 1)
    pcidev(x, "0000:01:00.0", "0302", "10de:20b5", "10de:1533", "a1")  # A100, no cuda OS device (no driver in the export)
    x.close("object")
    bridge(x, "0000:00:02.0", 0x02, 0x02, 1)
    nic(x, "0000:02:00.0", "mlx5_0")
    x.close("object")
    x.close("object")
    x.close("object")
    return footer(x)


def vm():
    x = X()
    header(x, range(2), [0])
    package(x, 0, range(2), 19958816768)
    host_bridge(x, 0x00, 0x00)
    pcidev(x, "0000:00:02.0", "0180", "1af4:1042", "1af4:1042", "01", [("vda", 0, "Disk")])
    pcidev(x, "0000:00:03.0", "0200", "1af4:1041", "1af4:1041", "01", [("eth0", 2, None)])
    x.close("object")
    x.close("object")
    return footer(x)


for name, fn in [("two-socket-8gpu-4nic.xml", two_socket), ("simple-1gpu-1nic.xml", simple), ("no-gpu-vm.xml", vm)]:
    with open(name, "w") as f:
        f.write(fn())
