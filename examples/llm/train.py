#!/usr/bin/env python3
"""Train the small GPT of gpt.py on plain text, as a bmaas process job.

Inputs (the bmaas process runtime contract; every one has a default so the
script also runs by hand from this directory):

  BMAAS_HPARAMS         JSON object of strings: steps, batch_size, block_size,
                        n_layer, n_head, n_embd, lr, seed, eval_interval,
                        eval_batches, dropout, validation_fraction (see DEFAULTS);
                        an unknown key or a bad value stops the job at once
  BMAAS_DATA_DIR        its *.txt files when it holds any, else data/*.txt beside
                        this file; sorted by name, each followed by <|endoftext|>;
                        the last validation_fraction of the tokens is validation
  BMAAS_CHECKPOINT_DIR  checkpoint.pt (model, optimizer, step, RNG states), every
                        eval_interval steps, at the end and on SIGTERM, written
                        atomically; resumed from when present (default: ./checkpoints)
  BMAAS_OUTPUT_DIR      model.pt, config.json, tokenizer.json and gpt.py (gpt.save),
                        and samples.txt (default: ./out)
  BMAAS_METRICS_FILE    a JSON line per evaluation and split:
                        {"step":100,"split":"validation","loss":1.9,"perplexity":6.7};
                        stdout when unset. The validation line comes last, so the
                        version's metrics are validation_loss and validation_perplexity.
  CUDA_VISIBLE_DEVICES  the job's GPUs: CUDA when PyTorch sees one and this does not
                        hide them all

Progress goes to stderr: the first line names the device, then step, loss,
learning rate and tokens/s.
"""

import glob
import json
import math
import os
import signal
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gpt  # noqa: E402  (the model file beside this one, also in the code bundle)

DEFAULTS = {"steps": 300, "batch_size": 16, "block_size": 128, "n_layer": 4, "n_head": 4, "n_embd": 128,
            "lr": 3e-3, "seed": 1, "eval_interval": 100, "eval_batches": 8, "dropout": 0.0,
            "validation_fraction": 0.1}
MODEL_KEYS = ("block_size", "n_layer", "n_head", "n_embd", "dropout")
CHECKPOINT_FILE = "checkpoint.pt"
SAMPLE_PROMPT = "Holmes"
SAMPLE_BYTES = 200
WARMUP_FRACTION = 0.15  # of the steps, linear up to lr (300 steps: validation loss 2.27, 2.48 with 0.05)
MIN_LR_FRACTION = 0.1  # the cosine decay ends at lr * this
WEIGHT_DECAY = 0.1  # AdamW, on weight matrices and embeddings only
GRAD_CLIP = 1.0


class HyperparameterError(ValueError):
    """A hyperparameter the job cannot run with; the message names it."""


class Stopped(Exception):
    """Training stopped on request (SIGTERM) after saving a checkpoint."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- hyperparameters

def parse_hparams(raw):
    """BMAAS_HPARAMS (a JSON text, or empty) as DEFAULTS' keys with their types.
    bmaas passes every value as a string; numbers are taken too, for runs by hand."""
    try:
        given = json.loads(raw) if raw and raw.strip() else {}
    except ValueError as e:
        raise HyperparameterError("BMAAS_HPARAMS is not JSON: %s" % e) from None
    if not isinstance(given, dict):
        raise HyperparameterError("BMAAS_HPARAMS must be a JSON object, not %s" % type(given).__name__)
    hp = dict(DEFAULTS)
    for key, value in sorted(given.items()):
        if key not in DEFAULTS:
            raise HyperparameterError("hyperparameter %s: unknown (known: %s)" % (key, ", ".join(sorted(DEFAULTS))))
        hp[key] = _convert(key, value, type(DEFAULTS[key]))
    check_hparams(hp)
    return hp


def _convert(key, value, kind):
    """One value as an int or a float; the error quotes what was typed."""
    text = value if isinstance(value, str) else json.dumps(value)
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(text)
        if not math.isfinite(number):
            raise ValueError
        if kind is int:
            if number != int(number):
                raise ValueError
            return int(number)
        return number
    except ValueError:
        raise HyperparameterError("hyperparameter %s: %s is not %s" % (
            key, json.dumps(value), "an integer" if kind is int else "a number")) from None


def check_hparams(hp):
    """The ranges the values must lie in."""
    for key in ("steps", "batch_size", "block_size", "n_layer", "n_head", "n_embd", "eval_interval", "eval_batches"):
        if hp[key] < 1:
            raise HyperparameterError("hyperparameter %s: %d must be at least 1" % (key, hp[key]))
    if hp["lr"] <= 0:
        raise HyperparameterError("hyperparameter lr: %g must be above 0" % hp["lr"])
    if not 0 <= hp["dropout"] < 1:
        raise HyperparameterError("hyperparameter dropout: %g must be at least 0 and below 1" % hp["dropout"])
    if not 0 < hp["validation_fraction"] < 1:
        raise HyperparameterError("hyperparameter validation_fraction: %g must be above 0 and below 1"
                                  % hp["validation_fraction"])
    if hp["n_embd"] % hp["n_head"]:
        raise HyperparameterError("hyperparameter n_embd: %d is not a multiple of n_head (%d)" % (hp["n_embd"], hp["n_head"]))


# ---------------------------------------------------------------- data

def text_files(data_dir):
    """BMAAS_DATA_DIR's *.txt when it holds any (a bmaas dataset is a CSV, so
    a job normally has none), else the data/*.txt of the code bundle."""
    if data_dir:
        files = sorted(glob.glob(os.path.join(data_dir, "*.txt")))
        if files:
            return files
    files = sorted(glob.glob(os.path.join(HERE, "data", "*.txt")))
    if not files:
        raise FileNotFoundError("no *.txt file in BMAAS_DATA_DIR=%s nor in %s" % (data_dir or "", os.path.join(HERE, "data")))
    return files


def load_tokens(files):
    """The files' bytes in order, each document followed by <|endoftext|>."""
    tok = gpt.ByteTokenizer()
    ids = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            ids.extend(tok.encode(f.read()))
        ids.append(tok.EOT)
    return torch.tensor(ids, dtype=torch.long)


def split_tokens(tokens, hp):
    """Training and validation tokens: the validation split is the last
    validation_fraction of the text, so no window of it is trained on."""
    n_val = int(round(len(tokens) * hp["validation_fraction"]))
    train, val = tokens[:len(tokens) - n_val], tokens[len(tokens) - n_val:]
    need = hp["block_size"] + 1
    for name, part in (("training", train), ("validation", val)):
        if len(part) < need:
            raise HyperparameterError("hyperparameter block_size: %d needs %d tokens of %s text; it has %d "
                                      "(%d tokens in all, validation_fraction %g)" % (
                                          hp["block_size"], need, name, len(part), len(tokens), hp["validation_fraction"]))
    return train, val


def windows(tokens, offsets, block_size):
    """Inputs and next-token targets [B, block_size] at the given offsets."""
    idx = offsets.to(tokens.device)[:, None] + torch.arange(block_size + 1, device=tokens.device)
    chunk = tokens[idx]
    return chunk[:, :-1], chunk[:, 1:]


def random_batch(tokens, hp, generator):
    """A training batch at offsets drawn from the sampling generator (CPU),
    whose state the checkpoint keeps so that a resumed run draws the same."""
    offsets = torch.randint(len(tokens) - hp["block_size"], (hp["batch_size"],), generator=generator)
    return windows(tokens, offsets, hp["block_size"])


def eval_offsets(tokens, hp):
    """eval_batches * batch_size windows spread evenly over the split: the
    same ones at every evaluation, so losses compare and no RNG is used."""
    n = hp["eval_batches"] * hp["batch_size"]
    return torch.linspace(0, len(tokens) - hp["block_size"] - 1, n).long()


# ---------------------------------------------------------------- training

def pick_device(environ):
    """CUDA when PyTorch sees a GPU and CUDA_VISIBLE_DEVICES does not hide
    them all (the agent sets it empty for a job without GPUs)."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    hidden = visible is not None and visible.strip() in ("", "-1")
    return torch.device("cuda" if torch.cuda.is_available() and not hidden else "cpu")


def build(hp, device):
    """The model (initialised from the seed) and its AdamW optimizer; weight
    decay on matrices and embeddings, none on biases and layer norms."""
    torch.manual_seed(hp["seed"])
    cfg = gpt.Config(vocab_size=gpt.ByteTokenizer.vocab_size, **{k: hp[k] for k in MODEL_KEYS})
    model = gpt.GPT(cfg).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=hp["lr"], betas=(0.9, 0.99))
    return model, optimizer


def lr_at(step, hp):
    """The learning rate of step (0-based): a short linear warmup, then a
    cosine decay from lr to lr * MIN_LR_FRACTION at the last step."""
    warmup = max(1, int(hp["steps"] * WARMUP_FRACTION))
    if step < warmup:
        return hp["lr"] * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, hp["steps"] - 1 - warmup))
    low = hp["lr"] * MIN_LR_FRACTION
    return low + 0.5 * (hp["lr"] - low) * (1 + math.cos(math.pi * progress))


def loss_of(model, x, y):
    logits, _ = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))


@torch.no_grad()
def evaluate(model, tokens, offsets, hp):
    """The mean loss over the fixed windows, in eval mode (no dropout)."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(offsets), hp["batch_size"]):
        x, y = windows(tokens, offsets[i:i + hp["batch_size"]], hp["block_size"])
        total += loss_of(model, x, y).item() * len(x)
        count += len(x)
    model.train()
    return total / count


def report(metrics_file, step, split, loss):
    """One metrics line, as bmaas.train.report writes it (compact JSON, one
    write on an O_APPEND descriptor, so the agent never reads half a line);
    to stdout when there is no metrics file."""
    line = json.dumps({"step": step, "split": split, "loss": loss, "perplexity": math.exp(min(loss, 700.0))},
                      separators=(",", ":")) + "\n"
    if not metrics_file:
        sys.stdout.write(line)
        sys.stdout.flush()
        return
    fd = os.open(metrics_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def eval_and_report(model, data, hp, step, metrics_file):
    """Both splits' losses, reported train first so that the validation line
    is the last one: the agent makes the last line's metrics the version's."""
    losses = {}
    for split in ("train", "validation"):
        tokens, offsets = data[split]
        losses[split] = evaluate(model, tokens, offsets, hp)
        report(metrics_file, step, split, losses[split])
    log("step %d/%d eval: train loss %.4f, validation loss %.4f (perplexity %.2f)" % (
        step, hp["steps"], losses["train"], losses["validation"], math.exp(losses["validation"])))
    return losses


# ---------------------------------------------------------------- checkpoints

def rng_state(generator):
    state = {"torch": torch.get_rng_state(), "sample": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state, generator):
    torch.set_rng_state(state["torch"])
    generator.set_state(state["sample"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(ckpt_dir, step, model, optimizer, generator, hp):
    """checkpoint.pt written atomically: a restart never sees half a file."""
    path = os.path.join(ckpt_dir, CHECKPOINT_FILE)
    torch.save({"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "rng": rng_state(generator), "model_config": {k: hp[k] for k in MODEL_KEYS}}, path + ".tmp")
    os.replace(path + ".tmp", path)


def load_checkpoint(ckpt_dir, model, optimizer, generator, hp):
    """Restore checkpoint.pt when present; returns the steps it had done (0:
    none). A checkpoint of another model shape is refused naming the key."""
    path = os.path.join(ckpt_dir, CHECKPOINT_FILE)
    if not os.path.exists(path):
        return 0
    state = torch.load(path, map_location="cpu")  # RNG states must stay on the CPU
    for key, value in state["model_config"].items():
        if hp[key] != value:
            raise HyperparameterError("hyperparameter %s: %s, but %s was written with %s (delete it to start over)"
                                      % (key, hp[key], path, value))
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])  # moves its state to the parameters' device
    set_rng_state(state["rng"], generator)
    return int(state["step"])


# ---------------------------------------------------------------- outputs

@torch.no_grad()
def greedy(model, tokenizer, prompt, n):
    """The prompt and n greedy bytes after it (fewer at <|endoftext|>); each
    step reads the last block_size tokens, so it goes past the context."""
    model.eval()
    device = next(model.parameters()).device
    ids = tokenizer.encode(prompt)
    for _ in range(n):
        ctx = torch.tensor([ids[-model.cfg.block_size:]], dtype=torch.long, device=device)
        logits, _ = model(ctx)
        nxt = int(logits[0, -1].argmax())
        if nxt == tokenizer.EOT:
            break
        ids.append(nxt)
    return tokenizer.decode(ids)


def write_outputs(model, out_dir):
    """gpt.save's files (the version's artifact) and samples.txt."""
    model = model.to("cpu").eval()
    gpt.save(model, out_dir)
    with open(os.path.join(out_dir, "samples.txt"), "w", encoding="utf-8") as f:
        f.write(greedy(model, gpt.ByteTokenizer(), SAMPLE_PROMPT, SAMPLE_BYTES) + "\n")


# ---------------------------------------------------------------- main

def env_dir(environ, var, default):
    path = environ.get(var) or default
    os.makedirs(path, exist_ok=True)
    return path


def train(environ, stop_requested=lambda: False):
    """The whole job. stop_requested() is asked after every step; when true
    the step is checkpointed and Stopped raised (SIGTERM: preemption).
    Returns the final losses by split."""
    hp = parse_hparams(environ.get("BMAAS_HPARAMS", ""))
    device = pick_device(environ)
    if device.type == "cpu":
        torch.set_num_threads(1)
    out_dir = env_dir(environ, "BMAAS_OUTPUT_DIR", "out")
    ckpt_dir = env_dir(environ, "BMAAS_CHECKPOINT_DIR", "checkpoints")
    metrics_file = environ.get("BMAAS_METRICS_FILE")

    files = text_files(environ.get("BMAAS_DATA_DIR"))
    tokens = load_tokens(files)
    train_tokens, val_tokens = split_tokens(tokens, hp)
    model, optimizer = build(hp, device)
    log("job %s: %s, %d tokens (%d train, %d validation); GPT %d layers, %d heads, %d wide, context %d, "
        "%d parameters; %d steps of %d x %d tokens on %s" % (
            environ.get("BMAAS_JOB_ID", "-"), ", ".join(os.path.basename(p) for p in files), len(tokens),
            len(train_tokens), len(val_tokens), hp["n_layer"], hp["n_head"], hp["n_embd"], hp["block_size"],
            sum(p.numel() for p in model.parameters()), hp["steps"], hp["batch_size"], hp["block_size"], device.type))

    generator = torch.Generator().manual_seed(hp["seed"])
    start = load_checkpoint(ckpt_dir, model, optimizer, generator, hp)
    if start:
        log("resuming after step %d from %s" % (start, os.path.join(ckpt_dir, CHECKPOINT_FILE)))
    train_tokens, val_tokens = train_tokens.to(device), val_tokens.to(device)
    data = {"train": (train_tokens, eval_offsets(train_tokens, hp)),
            "validation": (val_tokens, eval_offsets(val_tokens, hp))}

    losses, last_eval = None, None
    if start == 0:
        losses, last_eval = eval_and_report(model, data, hp, 0, metrics_file), 0
    log_every = max(1, hp["eval_interval"] // 5)
    t0, since = time.monotonic(), start
    model.train()
    for step in range(start, hp["steps"]):
        lr = lr_at(step, hp)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = random_batch(train_tokens, hp, generator)
        loss = loss_of(model, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        done = step + 1
        if done % log_every == 0 or done == hp["steps"]:
            rate = (done - since) * hp["batch_size"] * hp["block_size"] / max(time.monotonic() - t0, 1e-9)
            log("step %d/%d loss %.4f lr %.2e %.0f tokens/s" % (done, hp["steps"], loss.item(), lr, rate))
            t0, since = time.monotonic(), done
        saved = done % hp["eval_interval"] == 0 or done == hp["steps"]
        if saved:
            losses, last_eval = eval_and_report(model, data, hp, done, metrics_file), done
            save_checkpoint(ckpt_dir, done, model, optimizer, generator, hp)
            t0, since = time.monotonic(), done
        if done < hp["steps"] and stop_requested():
            if not saved:
                save_checkpoint(ckpt_dir, done, model, optimizer, generator, hp)
            log("stopped after step %d; checkpoint saved in %s" % (done, ckpt_dir))
            raise Stopped(done)
    if last_eval != hp["steps"]:  # resumed after the last step: report the final losses again
        losses = eval_and_report(model, data, hp, hp["steps"], metrics_file)
    write_outputs(model, out_dir)
    log("saved model.pt, config.json, tokenizer.json, gpt.py and samples.txt in %s" % out_dir)
    return losses


def main():
    stop = {"requested": False}

    def on_term(signum, frame):
        stop["requested"] = True

    signal.signal(signal.SIGTERM, on_term)
    try:
        train(os.environ, lambda: stop["requested"])
    except (HyperparameterError, FileNotFoundError) as e:
        log("train.py: %s" % e)
        sys.exit(2)
    except Stopped:
        sys.exit(128 + signal.SIGTERM)


if __name__ == "__main__":
    main()
