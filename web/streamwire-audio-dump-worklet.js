// Streamwire browser client: the AudioWorklet processor of the audio dump
// (web/streamwire-audio-dump.js loads it with `audioWorklet.addModule`). It runs on the audio
// rendering thread: every render quantum (128 frames) it takes the same frames of its three
// inputs (0 processed, 1 far-end, 2 raw; each downmixed to mono by the node), converts them to
// 16-bit little-endian PCM and hands them to the page in chunks. Because all three come from
// the same render quantum, sample n of each stream is the same AudioContext frame.

/** Frames per chunk posted to the page (about 85 ms at 48 kHz). */
const CHUNK = 4096;
const STREAMS = 3;

class StreamwireAudioDump extends AudioWorkletProcessor {
  /** @param {{processorOptions: {maxSamples: number}}} options */
  constructor(options) {
    super();
    this.maxSamples = options.processorOptions.maxSamples;
    this.state = 'idle'; // 'idle' -> 'recording' -> 'done'
    this.samples = 0;
    this.startFrame = null;
    this.fresh();
    this.port.onmessage = (ev) => {
      if (ev.data.type === 'start' && this.state === 'idle') this.state = 'recording';
      if (ev.data.type === 'stop' && this.state !== 'done') this.end('stopped');
    };
  }

  /** New chunk buffers. */
  fresh() {
    this.bufs = Array.from({ length: STREAMS }, () => new ArrayBuffer(CHUNK * 2));
    this.views = this.bufs.map((b) => new DataView(b));
    this.fill = 0;
  }

  /** Post the chunk so far (if any). */
  flush() {
    if (this.fill === 0) return;
    const bufs = this.bufs.map((b) => b.slice(0, this.fill * 2));
    this.port.postMessage({ type: 'data', frames: this.fill, bufs }, bufs);
    this.fresh();
  }

  /** Finish: post what is left and say why. */
  end(reason) {
    this.flush();
    this.state = 'done';
    this.port.postMessage({ type: 'end', reason, samples: this.samples, startFrame: this.startFrame });
  }

  process(inputs) {
    if (this.state === 'done') return false;
    if (this.state !== 'recording') return true;
    if (this.startFrame === null) {
      this.startFrame = currentFrame;
      this.port.postMessage({ type: 'started', startFrame: currentFrame, sampleRate });
    }
    const frames = inputs.find((x) => x?.[0])?.[0].length ?? 128;
    for (let i = 0; i < frames; i += 1) {
      if (this.samples >= this.maxSamples) {
        this.end('size-limit');
        return false;
      }
      for (let s = 0; s < STREAMS; s += 1) {
        // An input with nothing connected (or a source not delivering yet) has no channels.
        const ch = inputs[s]?.[0];
        const v = ch ? Math.max(-1, Math.min(1, ch[i])) : 0;
        this.views[s].setInt16(this.fill * 2, Math.round(v < 0 ? v * 32768 : v * 32767), true);
      }
      this.fill += 1;
      this.samples += 1;
      if (this.fill === CHUNK) this.flush();
    }
    if (this.samples >= this.maxSamples) {
      this.end('size-limit');
      return false;
    }
    return true;
  }
}

registerProcessor('streamwire-audio-dump', StreamwireAudioDump);
