"""Why a piece of content could not be hashed.

Every failure of the media layer is a `MediaError`, so the scan pipeline can
record "not hashed, because ..." for an item and carry on with the next one.
Messages are meant for investigators: they say what was found and which limit
or check it failed, with numbers.

All classes take a single message argument so that they pickle cleanly across
the process pool (exceptions are re-raised in the parent from their args)."""

from __future__ import annotations

from agent.model.vpdq import VpdqTextError


class MediaError(Exception):
    """Base class: the content could not be hashed."""


class EmptyContent(MediaError):
    """Zero bytes: there is nothing to decode (crypto hashes still apply)."""


class CorruptMedia(MediaError):
    """The bytes are not a decodable instance of the format they claim to be."""


class UnsupportedMedia(MediaError):
    """A valid format this installation cannot decode (e.g. HEIC without a plugin)."""


class MediaTooLarge(MediaError):
    """The content exceeds a configured bound (bytes, pixels, frames, duration)."""


class NoDecodableFrames(MediaError):
    """A video container without a single frame that could be decoded and hashed."""


class DecodeTimeout(MediaError):
    """Hashing took longer than the per-item wall-clock limit; the worker was killed."""


class WorkerStartTimeout(MediaError):
    """No worker process could begin the item within the start-up limit (an overloaded
    or broken host, not the item's fault); the workers were restarted."""


class WorkerCrashed(MediaError):
    """The worker process died while hashing (e.g. a decoder crashed on hostile input)."""


class HashingFailed(MediaError):
    """An unexpected error inside a hasher; the message names the original exception."""


# A malformed vPDQ text (`frame,quality,pdq_hex,timestamp` lines) is the model's error, under
# media's name: the parser lives in agent.model.vpdq (lists read it without the decoders), and one
# class means `except VpdqFormatError` catches what it raises. A ValueError rather than a
# MediaError: it is about a hash list, not media.
VpdqFormatError = VpdqTextError
