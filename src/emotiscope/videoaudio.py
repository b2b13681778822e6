"""The sound of an annotated video: the input's first audio track, copied into the output
(videowrite.H264Writer) packet for packet, or re-encoded to AAC when MP4 cannot hold its codec.
Needs PyAV (the [video] extra); the caller passes the imported `av` module."""

from __future__ import annotations

from collections.abc import Iterator

# Audio codecs the MP4 muxer takes as they are; anything else is re-encoded to AAC.
MP4_AUDIO = {"aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"}


class AudioCopy:
    """The first audio track of an opened file (`source`, which it closes), muxed into `out`
    in step with the video."""

    def __init__(self, av, out, source) -> None:
        self._input = source
        self.stream = self._input.streams.audio[0]
        video = self._input.streams.video
        start = video[0].start_time if video and video[0].start_time else 0
        # the output's video starts at 0 where the input's first video frame was
        self._offset = round(start * video[0].time_base / self.stream.time_base) if start else 0
        if self.stream.codec_context.codec.canonical_name in MP4_AUDIO:
            self.out, self._encode = out.add_stream_from_template(self.stream), False
        else:
            self.out = out.add_stream("aac", rate=self.stream.codec_context.sample_rate)
            self._encode = True
        self._packets: Iterator = self._input.demux(self.stream)
        self._pending = None

    def _next(self):
        if self._pending is None:
            for packet in self._packets:
                if packet.dts is not None:  # the demuxer's empty flush packets have none
                    self._pending = packet
                    break
        return self._pending

    def until(self, out, seconds: float) -> None:
        """Mux the track's packets that start before `seconds` of output time."""
        while (packet := self._next()) is not None:
            start = (packet.pts if packet.pts is not None else packet.dts) - self._offset
            if start * self.stream.time_base >= seconds:
                return
            self._pending = None
            if self._encode:
                for frame in self.stream.decode(packet):
                    frame.pts = None
                    for encoded in self.out.encode(frame):
                        out.mux(encoded)
            else:
                packet.pts = None if packet.pts is None else packet.pts - self._offset
                packet.dts -= self._offset
                packet.stream = self.out
                out.mux(packet)

    def close(self, out) -> None:
        if self._encode:
            for encoded in self.out.encode(None):
                out.mux(encoded)
        self._input.close()


def audio_track(av, out, source) -> AudioCopy | None:
    """The sound of the opened file `source`, or None when it has none or PyAV cannot read it
    (then `source` is closed here; else by the AudioCopy)."""
    try:
        if source.streams.audio:
            return AudioCopy(av, out, source)
    except (av.FFmpegError, OSError, ValueError):
        pass
    source.close()
    return None
