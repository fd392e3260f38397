"""TensorFlow / Keras 3 detectors: autoencoder, VAE, BiGAN and sequence-to-sequence.

All four score a record by how badly they reconstruct it (squared error summed over its
inputs), so their per-feature contributions are the squared errors. Models are stored as
``.keras`` files and loaded with ``safe_mode=True``.

TensorFlow is imported only by code that needs a Keras model: training, and checking the
numpy forward pass. Every model also stores its weights as ``forward.npz`` (a numpy program of
Dense, LSTM, RepeatVector and Reshape steps, checked against Keras when it is written) and
scores from it, so loading and scoring never pay TensorFlow's import or per-call cost — and a
Streamlit server that never imports Keras is spared the ``keras.backend.clear_session()`` that
Streamlit runs after every rerun once Keras is loaded.

The numpy program (:mod:`anodet.detectors.numpy_program`) is validated when loaded (known
operations and activations, consistent shapes) and run in row blocks on every core, in float32
with a float64 retry for rows whose float32 reconstruction error overflows (inputs around 1e19
and beyond), so scores are finite for every finite input.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from anodet.detectors import epochs, keras_zip
from anodet.detectors.base import Detector, as_matrix, load_arrays, save_arrays
from anodet.detectors.numpy_program import NUMPY_ACTIVATIONS, Step, check_program, run_program
from anodet.detectors.parallel import map_rows, with_float64_retry

MODEL_FILE = "model.keras"
FORWARD_FILE = "forward.npz"
PREDICT_CHUNK = 16_384


def _frameworks():
    """Keras and TensorFlow, imported on first use."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    return keras, tf


def _seed_everything(seed: int) -> None:
    """Same seed, same weights: seed every generator and ask TensorFlow for deterministic ops."""
    keras, tf = _frameworks()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _dense_stack(x, widths: list[int], activation: str = "relu", prefix: str = "dense"):
    keras, _ = _frameworks()
    for i, width in enumerate(widths):
        x = keras.layers.Dense(width, activation=activation, name=f"{prefix}_{i}")(x)
    return x


def _held_out_error(reconstruct) -> Any:
    """``rows -> mean squared reconstruction error`` (what the score measures), compiled once."""
    _, tf = _frameworks()
    error = tf.function(lambda x: tf.reduce_mean(tf.square(x - reconstruct(x, training=False))), reduce_retracing=True)
    return lambda rows: float(error(tf.constant(rows)))


def _run_epochs(detector: _ReconstructionDetector, X: np.ndarray, step, reconstruct,
                plan: epochs.Schedule | None = None) -> dict[str, Any]:
    """Train with :func:`epochs.run` under :func:`epochs.schedule`'s plan; ``step(batch)`` is a ``tf.function``.

    On small data the step is traced once for any batch size first: a trace costs about 0.4 s,
    a step on a few hundred rows about a millisecond. (The large-data path keeps its traces as
    they were: a stateful random op's numbers belong to its trace.)
    """
    _, tf = _frameworks()
    plan = plan or epochs.schedule(X, detector.params, detector.seed)
    if plan.early:
        step.get_concrete_function(tf.TensorSpec([None, X.shape[1]], tf.float32))
    return epochs.run(plan, lambda b: step(tf.constant(b)), detector.name, detector.seed,
                      _held_out_error(reconstruct), _weights_of(reconstruct))


def _weights_of(model) -> tuple[Any, Any]:
    """(get, set) of ``model``'s weights, to keep and restore the best epoch's."""
    return (lambda: [w.copy() for w in model.get_weights()]), model.set_weights


def _activation_name(fn) -> str:
    keras, _ = _frameworks()
    serialized = keras.activations.serialize(fn)
    return serialized if isinstance(serialized, str) else serialized.get("config", {}).get("name", "")


def _numpy_program(model) -> list[Step] | None:
    """The steps of a numpy forward pass equivalent to ``model``, or None if it has other layers.

    Covers the layers anodet's models use: Dense, LSTM, RepeatVector, TimeDistributed(Dense)
    and Reshape; nested models are flattened, and a VAE encoder's ``z_log_var`` head is skipped
    (scoring uses the mean path).
    """
    keras, _ = _frameworks()
    steps: list[Step] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or layer.name == "z_log_var":
            continue
        if isinstance(layer, keras.Model):
            inner = _numpy_program(layer)
            if inner is None:
                return None
            steps.extend(inner)
        elif isinstance(layer, keras.layers.Dense):
            steps.append(("dense", tuple(w.astype(np.float32) for w in layer.get_weights()),
                          _activation_name(layer.activation)))
        elif isinstance(layer, keras.layers.TimeDistributed) and isinstance(layer.layer, keras.layers.Dense):
            steps.append(("dense", tuple(w.astype(np.float32) for w in layer.layer.get_weights()),
                          _activation_name(layer.layer.activation)))
        elif isinstance(layer, keras.layers.LSTM):
            activations = (_activation_name(layer.activation), _activation_name(layer.recurrent_activation))
            if activations != ("tanh", "sigmoid"):
                return None
            op = "lstm_sequence" if layer.return_sequences else "lstm_last"
            steps.append((op, tuple(w.astype(np.float32) for w in layer.get_weights()), ""))
        elif isinstance(layer, keras.layers.RepeatVector):
            steps.append(("repeat", (np.array([layer.n]),), ""))
        elif isinstance(layer, keras.layers.Reshape):
            steps.append(("reshape", (np.array(layer.target_shape),), ""))
        else:
            return None
    if any(a and a not in NUMPY_ACTIVATIONS for _, _, a in steps):
        return None
    return steps


class _ReconstructionDetector(Detector):
    """A detector that owns one Keras model mapping records to their reconstructions.

    Models are evaluated with numpy from the Keras weights (checked against the Keras model
    when built): the same numbers without TensorFlow's fixed cost per call, which
    dominates small streaming batches.
    """

    family = "neural"
    model_: Any = None
    _chain: list[Step] | None = None
    _folder: Path | None = None
    _infer: Any = None
    block_rows = 8_192
    width_: int = 0  # inputs per record (the feature set's width), learned at fit or read at load

    def _build_inference(self, check_chain: bool = True) -> None:
        """Take the numpy program of the model, checked against one eager Keras call on probe rows.

        The compiled TensorFlow forward pass is built only if something asks for it (a model the
        numpy program cannot express): tracing it costs about half a second per model.
        """
        model = self.model_
        self.width_ = int(model.input_shape[-1])
        self._infer = None
        if not check_chain:
            return
        self._chain = _numpy_program(model)
        if self._chain is not None:
            probe = np.random.default_rng(0).uniform(0, 1, (64, self.width_)).astype(np.float32)
            keras_out = np.asarray(model(probe, training=False)).reshape(len(probe), self.width_)
            if not np.allclose(self._numpy_forward(probe), keras_out, atol=1e-5):
                self._chain = None

    def _fit_to_reconstruct(self, model, X: np.ndarray):
        """Train ``model`` to output its input (mean squared error) under :func:`epochs.schedule`'s plan.

        Fixed epochs: one ``model.fit`` call (the same weights as one call per epoch, without the
        per-call setup). Early stopping: a compiled train step in :func:`epochs.run`'s loop, where an
        epoch of a few steps costs milliseconds rather than ``fit``'s tenth of a second.
        """
        keras, tf = _frameworks()
        p = self.params
        # every Keras object named: auto names (adam_1, dense_3) count up in a process and would end up in the file
        model.compile(optimizer=keras.optimizers.Adam(p["learning_rate"], name="adam"), loss="mse")
        plan = epochs.schedule(X, p, self.seed)
        if not plan.early:
            with epochs.progress_bar(plan.epochs, self.name) as bar:
                tick = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: bar.update())
                model.fit(X, X, epochs=plan.epochs, batch_size=plan.batch_size, shuffle=True, verbose=0,
                          callbacks=[tick])
            self.training_ = {"rule": plan.rule, "epochs_run": plan.epochs, "rows": len(X)}
        else:
            weights, optimizer = model.trainable_weights, model.optimizer

            @tf.function(reduce_retracing=True)
            def step(x):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(x - model(x, training=True)))
                optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))

            self.training_ = _run_epochs(self, X, step, model, plan)
        self.model_ = model
        self._build_inference()
        return self

    def _numpy_forward(self, X: np.ndarray) -> np.ndarray:
        assert self._chain is not None
        return run_program(self._chain, X).reshape(len(X), self.width_)

    def _squared_errors(self, X: np.ndarray) -> np.ndarray:
        """Per-feature squared reconstruction errors of a block, in the block's dtype."""
        return (X - self._numpy_forward(X)) ** 2

    def _tf_forward(self, X: np.ndarray) -> np.ndarray:
        if self.model_ is None:  # loaded from forward.npz: bring in the Keras model on demand
            assert self._folder is not None
            self._load_keras(self._folder)
        if self._infer is None:
            _, tf = _frameworks()
            model = self.model_
            spec = [tf.TensorSpec([None, self.width_], tf.float32)]
            self._infer = tf.function(lambda x: model(x, training=False), input_signature=spec)
        parts = [self._infer(X[i:i + PREDICT_CHUNK]).numpy().reshape(-1, self.width_)
                 for i in range(0, len(X), PREDICT_CHUNK)]
        return np.concatenate(parts)

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        """The model's reconstruction of each record, shape ``(n, d)``."""
        X = as_matrix(X)
        if len(X) == 0:
            return np.empty((0, self.width_), dtype=np.float32)
        if self._chain is not None:
            return self._numpy_forward(X)
        return self._tf_forward(X)

    def feature_scores(self, X: np.ndarray) -> np.ndarray:
        X = as_matrix(X)
        if self._chain is None:
            return (X - self.reconstruct(X)) ** 2
        return map_rows(with_float64_retry(self._squared_errors), X, block=self.block_rows)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = as_matrix(X)
        if self._chain is None:
            return self.feature_scores(X).sum(axis=1).astype(np.float64)
        kernel = with_float64_retry(lambda b: self._squared_errors(b).sum(axis=1))
        return map_rows(kernel, X, block=self.block_rows).astype(np.float64, copy=False)

    def _save_state(self, folder: Path) -> list[Path]:
        path = folder / MODEL_FILE
        assert self.model_ is not None, "fit the detector before saving it"
        self.model_.save(path)
        keras_zip.make_reproducible(path)
        files = [path]
        if self._chain is not None:
            arrays = {f"step{i}_{j}": w for i, (_, ws, _) in enumerate(self._chain) for j, w in enumerate(ws)}
            arrays["ops"] = np.array([op for op, _, _ in self._chain])
            arrays["activations"] = np.array([a for _, _, a in self._chain])
            files.append(save_arrays(folder / FORWARD_FILE, **arrays))
        return files

    def _load_keras(self, folder: Path) -> None:
        keras, _ = _frameworks()
        self.model_ = keras.saving.load_model(folder / MODEL_FILE, safe_mode=True, compile=False)
        self._build_inference(check_chain=False)

    def _load_state(self, folder: Path) -> None:
        self._folder = Path(folder)
        if (folder / FORWARD_FILE).exists():
            state = load_arrays(folder / FORWARD_FILE)
            if "ops" not in state or "activations" not in state or len(state["ops"]) != len(state["activations"]):
                raise ValueError("forward.npz lacks matching 'ops' and 'activations' arrays; retrain the "
                                 "model (python -m anodet train) or restore the original file.")
            chain = []
            for i, (op, activation) in enumerate(zip(state["ops"], state["activations"], strict=True)):
                weights = tuple(state[f"step{i}_{j}"] for j in range(sum(k.startswith(f"step{i}_") for k in state)))
                chain.append((str(op), weights, str(activation)))
            self.width_ = check_program(chain)
            self._chain = [(op, tuple(w.astype(np.float32) if w.dtype.kind == "f" else w for w in weights), a)
                           for op, weights, a in chain]
        else:
            self._load_keras(folder)


class Autoencoder(_ReconstructionDetector):
    """A dense autoencoder trained to reconstruct normal records (mean squared error)."""

    name = "autoencoder"
    display_name = "Autoencoder"
    default_params: ClassVar[dict[str, Any]] = {
        "hidden": [32, 16], "latent": 2, "epochs": 10, "batch_size": 256, "learning_rate": 1e-3,
        **epochs.PARAMS, "max_steps": 3_000,
    }

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> Autoencoder:
        keras, _ = _frameworks()
        _seed_everything(self.seed)
        p = self.params
        d = as_matrix(X).shape[1]
        inputs = keras.Input((d,), name="record")
        x = _dense_stack(inputs, p["hidden"], prefix="encoder")
        x = keras.layers.Dense(p["latent"], name="code")(x)
        x = _dense_stack(x, p["hidden"][::-1], prefix="decoder")
        outputs = keras.layers.Dense(d, activation="sigmoid", name="reconstruction")(x)
        return self._fit_to_reconstruct(keras.Model(inputs, outputs, name="autoencoder"), as_matrix(X))


class Seq2Seq(_ReconstructionDetector):
    """An LSTM encoder-decoder that reads a record's inputs as a sequence and writes it back."""

    name = "seq2seq"
    display_name = "Sequence-to-sequence"
    block_rows = 2_048  # d steps of (rows, 4 x 32) gates stay in cache
    default_params: ClassVar[dict[str, Any]] = {
        "units": 32, "epochs": 8, "batch_size": 256, "learning_rate": 3e-3, "max_rows": 40_000,
        **epochs.PARAMS, "max_steps": 300,
    }

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> Seq2Seq:
        keras, _ = _frameworks()
        _seed_everything(self.seed)
        p = self.params
        X = as_matrix(X)
        if len(X) > p["max_rows"]:
            X = X[np.random.default_rng(self.seed).choice(len(X), p["max_rows"], replace=False)]
        d = X.shape[1]
        inputs = keras.Input((d,), name="record")
        seq = keras.layers.Reshape((d, 1), name="as_sequence")(inputs)
        state = keras.layers.LSTM(p["units"], name="encoder")(seq)
        repeated = keras.layers.RepeatVector(d, name="repeat")(state)
        decoded = keras.layers.LSTM(p["units"], return_sequences=True, name="decoder")(repeated)
        out = keras.layers.TimeDistributed(
            keras.layers.Dense(1, activation="sigmoid", name="step"), name="reconstruction")(decoded)
        outputs = keras.layers.Reshape((d,), name="as_record")(out)
        return self._fit_to_reconstruct(keras.Model(inputs, outputs, name="seq2seq"), X)


class VariationalAutoencoder(_ReconstructionDetector):
    """A VAE (Gaussian latent, ELBO loss); scored on the reconstruction of the latent mean."""

    name = "vae"
    display_name = "Variational autoencoder"
    default_params: ClassVar[dict[str, Any]] = {
        "hidden": [32, 16], "latent": 2, "epochs": 20, "batch_size": 256,
        "learning_rate": 1e-3, "beta": 0.05, **epochs.PARAMS, "max_steps": 3_000,
    }

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> VariationalAutoencoder:
        keras, tf = _frameworks()
        _seed_everything(self.seed)
        p = self.params
        d = as_matrix(X).shape[1]
        inputs = keras.Input((d,), name="record")
        h = _dense_stack(inputs, p["hidden"], prefix="encoder")
        z_mean = keras.layers.Dense(p["latent"], name="z_mean")(h)
        z_log_var = keras.layers.Dense(p["latent"], name="z_log_var")(h)
        encoder = keras.Model(inputs, [z_mean, z_log_var], name="encoder")
        code = keras.Input((p["latent"],), name="code")
        hd = _dense_stack(code, p["hidden"][::-1], prefix="decoder")
        decoder = keras.Model(
            code, keras.layers.Dense(d, activation="sigmoid", name="reconstruction")(hd),
            name="decoder")
        optimizer = keras.optimizers.Adam(p["learning_rate"], name="adam")
        beta = float(p["beta"])
        weights = encoder.trainable_weights + decoder.trainable_weights

        @tf.function(reduce_retracing=True)
        def step(x):
            with tf.GradientTape() as tape:
                mean, log_var = encoder(x, training=True)
                eps = tf.random.normal(tf.shape(mean))
                z = mean + tf.exp(0.5 * log_var) * eps
                recon = decoder(z, training=True)
                rec = tf.reduce_mean(tf.reduce_sum(tf.square(x - recon), axis=1))
                kl = -0.5 * tf.reduce_mean(
                    tf.reduce_sum(1 + log_var - tf.square(mean) - tf.exp(log_var), axis=1))
                loss = rec + beta * kl
            optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))
            return loss

        record = keras.Input((d,), name="record")
        self.model_ = keras.Model(record, decoder(encoder(record)[0]), name="vae_mean_path")
        self.training_ = _run_epochs(self, as_matrix(X), step, self.model_)
        self._build_inference()
        return self


class BiGAN(_ReconstructionDetector):
    """A BiGAN (encoder, generator, joint discriminator) with a cycle-consistency term.

    The adversarial game alone reconstructs poorly; adding the ALICE-style reconstruction
    term ``|x - G(E(x))|^2`` to the encoder/generator loss keeps ``G(E(x))`` close to ``x`` for
    normal records. Score: squared reconstruction error ``|x - G(E(x))|^2``.
    """

    name = "bigan"
    display_name = "BiGAN"
    default_params: ClassVar[dict[str, Any]] = {
        "hidden": [32, 16], "latent": 2, "epochs": 15, "batch_size": 256,
        "learning_rate": 1e-3, "cycle_weight": 10.0, **epochs.PARAMS, "max_steps": 3_000,
    }

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> BiGAN:
        keras, tf = _frameworks()
        _seed_everything(self.seed)
        p = self.params
        latent = p["latent"]
        d = as_matrix(X).shape[1]
        x_in = keras.Input((d,), name="record")
        encoder = keras.Model(
            x_in, keras.layers.Dense(latent, name="code")(_dense_stack(x_in, p["hidden"], prefix="enc")),
            name="encoder")
        z_in = keras.Input((latent,), name="code")
        generator = keras.Model(
            z_in, keras.layers.Dense(d, activation="sigmoid", name="record_out")(
                _dense_stack(z_in, p["hidden"][::-1], prefix="gen")),
            name="generator")
        dx, dz = keras.Input((d,), name="d_record"), keras.Input((latent,), name="d_code")
        h = keras.layers.Concatenate(name="joint")([dx, dz])
        h = _dense_stack(h, p["hidden"], activation="leaky_relu", prefix="disc")
        discriminator = keras.Model([dx, dz], keras.layers.Dense(1, name="logit")(h), name="discriminator")

        bce = keras.losses.BinaryCrossentropy(from_logits=True)
        opt_d = keras.optimizers.Adam(p["learning_rate"], beta_1=0.5, name="adam_discriminator")
        opt_g = keras.optimizers.Adam(p["learning_rate"], beta_1=0.5, name="adam_generator")
        cycle = float(p["cycle_weight"])
        ge_weights = encoder.trainable_weights + generator.trainable_weights
        d_weights = discriminator.trainable_weights

        @tf.function(reduce_retracing=True)
        def step(x):
            z = tf.random.normal((tf.shape(x)[0], latent))
            with tf.GradientTape() as tape_d, tf.GradientTape() as tape_g:
                z_hat = encoder(x, training=True)
                x_gen = generator(z, training=True)
                real = discriminator([x, z_hat], training=True)
                fake = discriminator([x_gen, z], training=True)
                loss_d = bce(tf.ones_like(real), real) + bce(tf.zeros_like(fake), fake)
                recon = generator(z_hat, training=True)
                loss_cycle = tf.reduce_mean(tf.reduce_sum(tf.square(x - recon), axis=1))
                loss_g = bce(tf.zeros_like(real), real) + bce(tf.ones_like(fake), fake) + cycle * loss_cycle
            opt_d.apply_gradients(zip(tape_d.gradient(loss_d, d_weights), d_weights, strict=True))
            opt_g.apply_gradients(zip(tape_g.gradient(loss_g, ge_weights), ge_weights, strict=True))
            return loss_d, loss_g

        record = keras.Input((d,), name="record")
        self.model_ = keras.Model(record, generator(encoder(record)), name="bigan_reconstruction")
        self.training_ = _run_epochs(self, as_matrix(X), step, self.model_)
        self._build_inference()
        return self
