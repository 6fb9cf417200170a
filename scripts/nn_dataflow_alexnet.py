"""Runs the nn_dataflow peer on AlexNet, the ISCA'16 setup (16x16 PEs, 128 KB buffer, 512 B RF,
16-bit words, costs MAC 1 / RF 1 / array 2 / buffer 6 / DRAM 200), batch 16, and prints the
per-layer energy (x1e9, MAC-normalized), the search time and the total energy.

Used by scripts/bench-energy.sh; this is joule's own driver of nn_dataflow's public API.
"""
import sys
import time

from nn_dataflow.core import (Cost, MapStrategyEyeriss, NNDataflow, NodeRegion, Option,
                              PhyDim2, Resource)
from nn_dataflow.core import mem_hier_enum as me
from nn_dataflow.core import data_category_enum as de
from nn_dataflow.nns import import_network


def main():
    batch = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    network = import_network('alex_net')
    one = NodeRegion(origin=PhyDim2(0, 0), dim=PhyDim2(1, 1), type=NodeRegion.DRAM)
    resource = Resource(
        proc_region=NodeRegion(origin=PhyDim2(0, 0), dim=PhyDim2(1, 1), type=NodeRegion.PROC),
        dram_region=one, src_data_region=one, dst_data_region=one,
        dim_array=PhyDim2(16, 16), size_gbuf=128 * 1024 // 2, size_regf=512 // 2,
        array_bus_width=float('inf'), dram_bandwidth=float('inf'), no_time_mux=False)
    cost = Cost(mac_op=1, mem_hier=(200, 6, 2, 1), noc_hop=0, idl_unit=0)
    start = time.time()
    tops, _ = NNDataflow(network, batch, resource, cost, MapStrategyEyeriss).schedule_search(Option())
    elapsed = time.time() - start
    top = tops[0]
    names = ['DRAM', 'GBUF', 'ITCN', 'REGF']
    print('layer      ALU    DRAM  Buffer   Array      RF   | DRAM accesses fil/ifm/ofm')
    for layer in ['conv%d' % i for i in range(1, 6)] + ['fc%d' % i for i in range(1, 4)]:
        ops = 0
        acc = [0.0] * me.NUM
        dram = [0.0] * de.NUM
        for part in network:
            if part and part.startswith(layer):
                sr = top[part]
                ops += sr.total_ops
                acc = [a + b for a, b in zip(acc, sr.total_accesses)]
                dram = [a + b for a, b in zip(dram, sr.scheme['access'][me.DRAM])]
        print('%-6s %7.3f %7.3f %7.3f %7.3f %7.3f   | %s' % (
            layer, ops / 1e9, *(a * c / 1e9 for a, c in zip(acc, cost.mem_hier)),
            ' '.join('%.4g' % d for d in dram)))
    print('nn_dataflow_time_s %.3f' % elapsed)
    print('nn_dataflow_total_energy %.6e' % top.total_cost)


if __name__ == '__main__':
    main()
