// Call page: local media helpers (capture constraints, the pre-join preview, level meters,
// device lists). Nothing here captures on its own: every capture follows a user action or a
// successful join (app.js).

/**
 * Capture constraints from the page URL: `res=WxH` (default 640x480), `fps=N`, and the chosen
 * devices. @param {URLSearchParams} params @param {{cam?: string, mic?: string}} [devices]
 */
export function constraints(params, devices = {}) {
  const [w, h] = (params.get('res') ?? '640x480').split('x').map(Number);
  const video = { width: w || 640, height: h || 480 };
  const fps = Number(params.get('fps'));
  if (fps > 0) video.frameRate = { ideal: fps, max: fps };
  if (devices.cam) video.deviceId = { exact: devices.cam };
  const audio = devices.mic ? { deviceId: { exact: devices.mic } } : true;
  return { video, audio };
}

/** Stop every track of `stream`. @param {MediaStream|null} stream */
export function stopStream(stream) {
  for (const t of stream?.getTracks() ?? []) t.stop();
}

let ctx = null;

/**
 * A level meter on an audio track: `read()` returns 0..1 (RMS, scaled); `close()` frees it.
 * @param {MediaStreamTrack} track
 */
export function levelMeter(track) {
  ctx ??= new AudioContext();
  if (ctx.state === 'suspended') ctx.resume().catch(() => {});
  const src = ctx.createMediaStreamSource(new MediaStream([track]));
  const an = ctx.createAnalyser();
  // About 170 ms of samples at 48 kHz: read every 200 ms, a short sound between reads counts.
  an.fftSize = 8192;
  src.connect(an);
  const buf = new Float32Array(an.fftSize);
  return {
    read() {
      if (track.readyState !== 'live' || !track.enabled) return 0;
      an.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const v of buf) sum += v * v;
      return Math.min(1, Math.sqrt(sum / buf.length) * 4);
    },
    close() {
      src.disconnect();
    },
  };
}

/**
 * Fill the `<select>`s with the cameras and microphones (labels are known only once the page
 * may use the devices), keeping the current choice. @param {HTMLSelectElement} cam
 * @param {HTMLSelectElement} mic @param {{cam?: string, mic?: string}} [current]
 */
export async function listDevices(cam, mic, current = {}) {
  const all = await navigator.mediaDevices.enumerateDevices();
  for (const [sel, kind, noun] of [[cam, 'videoinput', 'Camera'], [mic, 'audioinput', 'Microphone']]) {
    const devs = all.filter((d) => d.kind === kind && d.deviceId);
    sel.replaceChildren(...devs.map((d, i) => new Option(d.label || `${noun} ${i + 1}`, d.deviceId)));
    const want = kind === 'videoinput' ? current.cam : current.mic;
    if (want && devs.some((d) => d.deviceId === want)) sel.value = want;
    sel.disabled = devs.length === 0;
  }
  return all;
}
