"""asynchrony="ray": a parameter-server actor holds the model (one flat
vector: a linear model's w and b, or an MLP's packed weights) and its
velocity. Worker actors hold shards of the rows, placed once in Ray's object
store. The server hands each worker `local_steps` updates of work at a time,
with the weights as they are at that moment (the worker's pull); the worker
runs the compiled kernel on its own copy and returns the change (its push).
The server applies whichever push arrives first (ray.wait), never waiting
for all, with the explicit momentum over the global sequence of pushes:

    v <- mu v + delta;  theta <- theta + v            (heavy ball)
    v <- mu v + delta;  theta <- theta + mu v + delta  (Nesterov, MLP option)

With local_steps=1 and a linear model, delta = -eta * gradient: the paper's
model. The staleness of a push is the server's version when it applies the
push minus the version the worker pulled."""
import os
import socket
import uuid
import warnings
from numbers import Integral

import numpy as np

from .. import _core

ONE_THREAD = {"kind": "threads", "n_threads": 1, "update": "racy", "staleness_every": 0}


def require_ray():
    """The ray module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ImportError(
            'asynchrony="ray" needs Ray, an optional extra: pip install '
            '"pyasync-sgd[ray]" (or pip install ".[ray]" in a checkout of pyasync)'
        ) from None
    return ray


def check_ray_params(local_steps, address):
    """ValueErrors for bad Ray parameters (checked on every engine, as
    scikit-learn checks every parameter, used or not)."""
    if isinstance(local_steps, bool) or not isinstance(local_steps, Integral) \
            or local_steps < 1:
        raise ValueError(f"local_steps must be an integer >= 1, got {local_steps!r}")
    if address is not None and not isinstance(address, str):
        raise ValueError(f"ray_address must be None or a string, got {address!r}")


def ray_engine(n_workers, local_steps, address):
    """The engine description of asynchrony="ray", its parameters checked
    (and Ray's presence, so that a missing Ray fails before any work)."""
    check_ray_params(local_steps, address)
    require_ray()
    return {"kind": "ray", "n_workers": int(n_workers), "local_steps": int(local_steps),
            "address": address}


# Seconds to wait for a cluster's head to accept a connection: Ray itself
# retries an unreachable address for many minutes.
CONNECT_TIMEOUT = 10.0


# HTTP/2's client preface and an empty SETTINGS frame: a Ray head's ports
# (GCS, Ray Client) speak gRPC and answer with a SETTINGS frame of their own
HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
HTTP2_SETTINGS = 4


def check_reachable(address, timeout=CONNECT_TIMEOUT):
    """A ConnectionError within `timeout` seconds where `address` ("host:port"
    or "ray://host:port"; "auto" and local addresses are Ray's to resolve)
    accepts no TCP connection, or accepts one but does not answer as gRPC
    does (another service's port: Ray would wait on it for minutes). Under
    RAY_USE_TLS the handshake is TLS's: only the port is tried."""
    host_port = address.split("://", 1)[-1]
    host, sep, port = host_port.rpartition(":")
    bare_ipv6 = ":" in host and not host.startswith("[")
    if address == "auto" or not sep or not port.isdigit() or bare_ipv6:
        return
    try:
        conn = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except OSError as exc:
        raise ConnectionError(
            f"ray_address={address!r}: no Ray head answers there ({exc}). Start one "
            "(ray start --head) or pass its address; ray_address=None starts a local "
            "Ray.") from None
    with conn:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return
        try:
            conn.sendall(HTTP2_HELLO)
            reply = conn.recv(9)
        except OSError:  # a timeout, or the peer hung up
            reply = b""
    if len(reply) < 4 or reply[3] != HTTP2_SETTINGS:
        raise ConnectionError(
            f"ray_address={address!r}: the port is open, but no Ray head answers there "
            "(it does not speak gRPC: another service, or the dashboard's port?). Pass "
            "the head's GCS address (HEAD:6379) or ray://HEAD:10001.")


def connect(address):
    """Connects to the Ray cluster at `address`, or starts a local Ray when
    address is None and none is running. A local Ray stays up for the next
    fit and stops when Python exits (or at ray.shutdown())."""
    ray = require_ray()
    if not ray.is_initialized():
        options = dict(include_dashboard=False, log_to_driver=False)
        if address is None:
            ray.init(**options)
        else:
            check_reachable(address)
            ray.init(address=address, **options)
    return ray


# ---- what a worker computes: one chunk of updates on its own copy ----

def _row_weights(sample_weight):
    return (None if sample_weight is None
            else np.ascontiguousarray(sample_weight, dtype=np.float64))


class LinearChunks:
    """Linear model: theta = [w, b]."""

    def __init__(self, params):
        # momentum and averaging live on the server
        self.params = dict(params, momentum=0.0, average=0)

    def prepare(self, X, y, sample_weight):
        from .._sgd import engine_input
        return (engine_input(X), np.ascontiguousarray(y, dtype=np.float64),
                _row_weights(sample_weight))

    def run(self, shard, theta, t0, eta, rows):
        from .._sgd import new_state
        X, y, sw = shard
        p = self.params
        lazy = hasattr(X, "indptr") and p["l2"] > 0.0
        state = new_state(X.shape[1], theta[:-1], theta[-1], None, 0.0, 0.0, p["l1"], lazy)
        res = _core.linear_epoch(p, X, y, sw, state, t0, eta, rows, ONE_THREAD,
                                 np.zeros(1, dtype=np.int64))
        delta = np.empty_like(theta)
        np.subtract(state["w"], theta[:-1], out=delta[:-1])
        delta[-1] = state["b"][0] - theta[-1]
        # the L2 decay's share of the change, which the server keeps out of
        # the velocity as the other engines do (w <- d w + v): exact at one
        # update a push, the decays' product over the push's steps beyond
        shrink = None
        if p["l2"] > 0.0 and res["n_updates"]:
            steps = _core.etas(p, eta, t0 + 1, res["n_updates"])
            decay = float(np.prod(np.maximum(0.0, 1.0 - p["l2"] * steps)))
            shrink = np.zeros_like(theta)
            shrink[:-1] = (decay - 1.0) * theta[:-1]  # the intercept is not decayed
        return delta, shrink, res["sumloss"], res["n_updates"], res["diverged"]


class MLPChunks:
    """MLP: theta = the packed weights; a chunk is local_steps minibatches."""

    def __init__(self, params):
        self.params = dict(params, momentum=0.0, nesterov=False)

    def prepare(self, X, y, sample_weight):
        from ..mlp import _engine_X
        return (_engine_X(X), np.ascontiguousarray(y, dtype=np.float64),
                _row_weights(sample_weight))

    def run(self, shard, theta, t0, eta, rows):
        from .. import _mlp
        X, Y, sw = shard
        w = theta.copy()
        res = _mlp.mlp_epoch(dict(self.params, lr=eta), X, Y, w, np.zeros_like(w), rows,
                             ONE_THREAD, np.zeros(1, dtype=np.int64), sw)
        # alpha is in the gradient, as scikit-learn's MLP: no decay to keep apart
        return w - theta, None, res["sumloss"], res["n_updates"], res["diverged"]


class Worker:
    """A Ray actor: the shards it holds and the chunk runner."""

    def __init__(self, chunks, shard_id, shard):
        self.chunks = chunks
        self.shards = {}
        self.adopt(shard_id, shard)

    def adopt(self, shard_id, shard):
        self.shards[shard_id] = self.chunks.prepare(*shard)
        return True

    def set_targets(self, shard_id, targets):
        """A new problem on the same rows (the next one-vs-rest class):
        targets = (y, sample weights), the weights its own (class weights
        differ by problem)."""
        y, sample_weight = targets
        X = self.shards[shard_id][0]
        self.shards[shard_id] = (X, np.ascontiguousarray(y, dtype=np.float64),
                                 _row_weights(sample_weight))
        return True

    def run(self, theta, t0, eta, shard_id, rows):
        return self.chunks.run(self.shards[shard_id], theta, t0, eta, rows)


class ParameterServer:
    """A Ray actor: the model, its velocity, and the asynchronous loop."""

    def __init__(self, theta, velocity, workers, shard_refs, shard_sizes, chunk_rows,
                 nesterov, hist_len, seed):
        self.theta = np.array(theta, dtype=np.float64)
        self.velocity = np.array(velocity, dtype=np.float64)
        self.workers = list(workers)
        self.alive = [True] * len(self.workers)
        self.owner = list(range(len(self.workers)))  # shard -> worker
        self.shard_refs = list(shard_refs)
        self.shard_sizes = list(shard_sizes)
        self.chunk_rows = int(chunk_rows)
        self.nesterov = bool(nesterov)
        self.hist_len = int(hist_len)
        self.seed = int(seed)
        self.version = 0
        self.target_refs = None  # the targets of the current problem, if replaced

    def state(self):
        return self.theta, self.velocity

    def reset(self, theta, velocity, target_refs, seed):
        """Starts the next problem on the same rows: new model, velocity and
        targets (sent to whichever worker holds each shard now)."""
        import ray
        self.theta = np.array(theta, dtype=np.float64)
        self.velocity = np.array(velocity, dtype=np.float64)
        self.seed = int(seed)
        self.version = 0
        self.target_refs = list(target_refs)
        ray.get([self.workers[self.owner[sid]].set_targets.remote(sid, ref)
                 for sid, ref in enumerate(self.target_refs)])
        return True

    def _plan(self, epoch, shuffle):
        """Each worker's queue of (shard, rows) chunks for this epoch."""
        queues = [[] for _ in self.workers]
        for sid, size in enumerate(self.shard_sizes):
            rows = np.arange(size, dtype=np.int64)
            if shuffle:
                np.random.default_rng([self.seed, epoch, sid]).shuffle(rows)
            chunks = [rows[i:i + self.chunk_rows] for i in range(0, size, self.chunk_rows)]
            queues[self.owner[sid]] += [(sid, c) for c in chunks]
        return queues

    def _bury(self, dead, queues, events):
        """Worker `dead` died: its shards and its queued work go to the live
        worker with the least queued work."""
        import ray
        self.alive[dead] = False
        live = [i for i, a in enumerate(self.alive) if a]
        if not live:
            return
        heir = min(live, key=lambda i: len(queues[i]))
        moved = [sid for sid, o in enumerate(self.owner) if o == dead]
        for sid in moved:
            ray.get(self.workers[heir].adopt.remote(sid, self.shard_refs[sid]))
            if self.target_refs is not None:
                ray.get(self.workers[heir].set_targets.remote(sid, self.target_refs[sid]))
            self.owner[sid] = heir
        queues[heir] += queues[dead]
        queues[dead] = []
        events.append(f"Ray worker {dead} died; its shard(s) {moved} moved to worker "
                      f"{heir}; {len(live)} worker(s) left")

    def epoch(self, t0, eta, momentum, epoch, shuffle, average=0):
        """One epoch of pushes; with `average` > 0 (averaged SGD from
        global update number `average` on), the server's model after each
        push counts once for each averaged update the push made: with
        local_steps=1, every iterate."""
        import ray
        from ray.exceptions import RayActorError
        hist = np.zeros(self.hist_len, dtype=np.int64)
        stats = {"sumloss": 0.0, "n_updates": 0, "staleness_sum": 0.0,
                 "staleness_max": 0, "diverged": False, "events": [], "all_dead": False,
                 "avg_sum": np.zeros_like(self.theta), "avg_count": 0}
        queues = self._plan(epoch, shuffle)
        pending = {}
        t = int(t0)

        def dispatch(i, theta_ref):
            if queues[i] and self.alive[i]:
                sid, rows = queues[i].pop(0)
                ref = self.workers[i].run.remote(theta_ref, t, eta, sid, rows)
                pending[ref] = (i, self.version, sid, rows)

        theta_ref = ray.put(self.theta)
        for i in range(len(self.workers)):
            dispatch(i, theta_ref)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            i, pulled, sid, rows = pending.pop(ready[0])
            try:
                delta, shrink, sumloss, n_updates, diverged = ray.get(ready[0])
            except RayActorError:
                queues[i].insert(0, (sid, rows))  # not applied: redo it elsewhere
                self._bury(i, queues, stats["events"])
                if not any(self.alive):
                    stats["all_dead"] = True
                    break
                theta_ref = ray.put(self.theta)
                for j, a in enumerate(self.alive):
                    if a and not any(p[0] == j for p in pending.values()):
                        dispatch(j, theta_ref)
                continue
            staleness = self.version - pulled
            hist[min(staleness, self.hist_len - 1)] += 1
            stats["staleness_sum"] += staleness
            stats["staleness_max"] = max(stats["staleness_max"], staleness)
            if shrink is not None:  # the decay acts on the model, not the velocity
                delta = delta - shrink
                self.theta += shrink
            self.velocity *= momentum
            self.velocity += delta
            if self.nesterov:
                self.theta += momentum * self.velocity + delta
            else:
                self.theta += self.velocity
            self.version += 1
            if average > 0:  # updates t + 1 .. t + n_updates, those from `average` on
                averaged = max(0, t + n_updates - max(t, average - 1))
                stats["avg_sum"] += averaged * self.theta
                stats["avg_count"] += averaged
            t += n_updates
            stats["sumloss"] += sumloss
            stats["n_updates"] += n_updates
            if diverged or not np.isfinite(sumloss) or not np.all(np.isfinite(self.theta)):
                stats["diverged"] = True
                break
            theta_ref = ray.put(self.theta)
            dispatch(i, theta_ref)
        stats["hist"] = hist
        stats["staleness_count"] = int(hist.sum())
        return stats, self.theta, self.velocity


class RayBackend:
    """The driver's side: places the shards, starts the actors, runs epochs
    on the server and mirrors its model; close() tears everything down."""

    def __init__(self, chunks, X, y, sample_weight, rows, theta, velocity, *, n_workers,
                 local_steps, rows_per_step=1, address=None, nesterov=False,
                 hist_len=257, seed=0):
        ray = connect(address)
        self.ray = ray
        self.actors = []
        rows = np.asarray(rows, dtype=np.int64)
        n_workers = max(1, min(int(n_workers), rows.shape[0]))
        shards = [np.sort(rows[k::n_workers]) for k in range(n_workers)]
        try:
            refs = [ray.put((X[s], y[s], None if sample_weight is None else sample_weight[s]))
                    for s in shards]
            # zero CPUs reserved: the actors run wherever Ray has room, even
            # on a machine with fewer cores than workers
            WorkerActor = ray.remote(num_cpus=0)(Worker)
            name = f"pyasync-{uuid.uuid4().hex[:12]}"  # named: visible to tools
            workers = [WorkerActor.options(name=f"{name}-worker-{k}").remote(
                chunks, k, refs[k]) for k in range(n_workers)]
            self.actors += workers
            server = ray.remote(num_cpus=0)(ParameterServer).options(
                name=f"{name}-server").remote(
                theta, velocity, workers, refs, [s.shape[0] for s in shards],
                int(local_steps) * int(rows_per_step), nesterov, hist_len, seed)
            self.actors.append(server)
            self.server = server
            self.refs = refs  # the driver owns the shards: they live as long as it
            self.shards = shards
        except BaseException:
            self.close()
            raise

    def restart(self, theta, velocity, y, sample_weight, seed):
        """Reuses the actors for another problem on the same rows and
        features (the next one-vs-rest class): only the targets and the
        row weights travel."""
        refs = [self.ray.put((y[s], None if sample_weight is None else sample_weight[s]))
                for s in self.shards]
        self._wait(self.server.reset.remote(theta, velocity, refs, seed))

    def _wait(self, call):
        """The result of a call on the server; its death is a RuntimeError."""
        from ray.exceptions import RayActorError
        try:
            return self.ray.get(call)
        except RayActorError as exc:
            raise RuntimeError(f"the Ray parameter server died: {exc}") from None

    def epoch(self, t0, eta, momentum, epoch, shuffle, average=0):
        """Runs one epoch on the server; returns (stats, theta, velocity)."""
        stats, theta, velocity = self._wait(self.server.epoch.remote(
            int(t0), float(eta), float(momentum), int(epoch), bool(shuffle), int(average)))
        for message in stats.pop("events"):
            warnings.warn(message, RuntimeWarning, stacklevel=3)
        if stats.pop("all_dead"):
            raise RuntimeError("every Ray worker died; the fit cannot go on (the "
                               "estimator keeps its previous state)")
        return stats, theta, velocity

    def close(self):
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # already gone
                pass
        self.actors = []
