#!/usr/bin/env python3
"""Two-worker (or N-worker) DistributedDataParallel training on CPU with gloo.

Run as a bmaas process job with --workers 2: the agents start one copy per
worker with MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK set, and
torch.distributed.init_process_group("gloo") meets there. Each rank trains
on its shard of the rows (DistributedSampler); gradients are averaged by
DDP. Rank 0 reports the metrics, writes the checkpoints and the output
files (model.pt, model.onnx, model.json, signature.json), exactly like
train.py, whose data, model and export helpers this script reuses.

Without WORLD_SIZE in the environment it runs as a single worker.
"""

import datetime
import os
import socket
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import train as base  # train.py beside this file

base.DEFAULTS["epochs"] = 5


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_shared_checkpoint(ckpt_dir, rank):
    """Rank 0 reads the newest checkpoint and sends it to every rank, so all
    resume from the same model and optimizer state."""
    state = [None]
    path = os.path.join(ckpt_dir, "checkpoint.pt")
    if rank == 0 and os.path.exists(path):
        state[0] = torch.load(path, map_location="cpu")
    dist.broadcast_object_list(state, src=0)
    return state[0]


def main():
    if "WORLD_SIZE" not in os.environ:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE="1", RANK="0")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    torch.set_num_threads(1)
    t0 = time.monotonic()
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))
    base.log("rank %d of WORLD_SIZE %d: joined %s:%s in %.2fs (LOCAL_RANK %s, NODE_RANK %s, job %s)" % (
        rank, world, os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"], time.monotonic() - t0,
        os.environ.get("LOCAL_RANK", "-"), os.environ.get("NODE_RANK", "-"), os.environ.get("BMAAS_JOB_ID", "-")))

    hp = base.hparams()
    torch.manual_seed(hp["seed"])
    x, y, meta = base.load_csv(base.find_csv(), hp["target"])
    tr, va = base.split(len(x), hp["validation_fraction"], hp["seed"])
    model, loss_fn = base.build(x[tr], meta, hp)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    out_dir = base.env_dir("BMAAS_OUTPUT_DIR", "out", create=rank == 0)
    ckpt_dir = base.env_dir("BMAAS_CHECKPOINT_DIR", "checkpoints", create=rank == 0)
    state, start = load_shared_checkpoint(ckpt_dir, rank), 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["epoch"])
        base.log("rank %d: resuming after epoch %d" % (rank, start))
    ddp = DDP(model)  # broadcasts rank 0's parameters to every rank

    shard = TensorDataset(x[tr], y[tr])
    sampler = DistributedSampler(shard, num_replicas=world, rank=rank, shuffle=True, seed=hp["seed"])
    loader = DataLoader(shard, batch_size=hp["batch_size"], sampler=sampler)
    base.log("rank %d: %d of %d training rows, %d batches per epoch" % (rank, len(sampler), len(tr), len(loader)))
    val = {}
    for epoch in range(start + 1, hp["epochs"] + 1):
        t0 = time.monotonic()
        sampler.set_epoch(epoch)
        total = torch.zeros(2, dtype=torch.float64)  # loss sum, rows
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(ddp(xb), yb)
            loss.backward()  # DDP averages the gradients over the ranks
            optimizer.step()
            total += torch.tensor([loss.item() * len(xb), len(xb)], dtype=torch.float64)
        dist.all_reduce(total)  # every rank's loss, summed
        train_loss = (total[0] / total[1].clamp_min(1)).item()
        if rank == 0:
            base.report(epoch, "train", loss=train_loss)
            msg = "epoch %d/%d train loss %.4f" % (epoch, hp["epochs"], train_loss)
            if len(va):
                val = base.evaluate(model, loss_fn, x[va], y[va], meta)
                base.report(epoch, "validation", **val)
                msg += "".join("  validation %s %.4f" % kv for kv in val.items())
            base.save_checkpoint(ckpt_dir, epoch, model, optimizer)
            base.log("%s  (%.3fs)" % (msg, time.monotonic() - t0))
    if rank == 0:
        if len(va) and not val:
            val = base.evaluate(model, loss_fn, x[va], y[va], meta)
        base.export(model, meta, hp, out_dir, val)
        base.log("rank 0: saved model.pt, model.onnx, model.json and signature.json in %s" % out_dir)
    dist.barrier()
    dist.destroy_process_group()
    base.log("rank %d: done" % rank)


if __name__ == "__main__":
    main()
