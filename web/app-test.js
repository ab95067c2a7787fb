// Call page, pre-join screen: "Test my camera and microphone" (the echo test) and "Test
// network" (the network probe), with the echo playing and the figures of each report
// (client.startEchoTest / client.probeNetwork, web/streamwire-media-test.js). One test at a
// time; Join stops a running one first.

const $ = (id) => document.getElementById(id);

const NAMES = { echo: 'Echo test', probe: 'Network test' };

function fmt(x, unit, digits = 0) {
  return x == null ? '—' : `${Number(x).toFixed(digits)} ${unit}`;
}

/** One direction: its rate (the estimate for a probe), loss and jitter. */
function pathText(p, probe) {
  const rate = probe ? p.estimate_kbps : p.kbps;
  return `${fmt(rate, 'kbit/s')} · loss ${fmt(p.loss_pct, '%', 1)} · jitter ${fmt(p.jitter_ms, 'ms')}`;
}

function showFigures(r, test) {
  const probe = test === 'probe';
  const rows = [
    ['Round trip', fmt(r?.rtt_ms, 'ms')],
    ...(probe ? [] : [['Echo after', r?.echo_delay_ms == null ? 'waiting…' : fmt(r.echo_delay_ms, 'ms')]]),
    ['Upload', r ? pathText(r.uplink, probe) : '—'],
    ['Download', r ? pathText(r.downlink, probe) : '—'],
    ['Quality', r ? `${r.quality} / 5` : '—'],
  ];
  $('mt-figures').replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    return [dt, dd];
  }));
}

/**
 * Wire the two buttons. `host.client()` resolves with a StreamwireClient for the chosen room
 * and token (not joined); `host.media()` says what the echo test sends: `{stream}` (the
 * preview, which stays the page's) or `{video, audio}` constraints, or null for nothing.
 * @param {any} app the page state (`app.mediaTest` is the running test, for the tests)
 * @param {{client: () => Promise<any>, media: () => any}} host
 */
export function mountMediaTests(app, host) {
  let running = null;
  let starting = false;

  const setBusy = (busy) => {
    $('echo-test-btn').disabled = busy;
    $('probe-btn').disabled = busy;
    $('mt-stop').hidden = !busy;
  };
  const status = (text, kind = '') => {
    $('mt-status').textContent = text;
    $('mt-status').className = kind;
  };

  async function run(test) {
    if (running || starting) return;
    starting = true;
    setBusy(true);
    $('mt-panel').hidden = false;
    $('mt-video').hidden = test !== 'echo';
    $('mt-video').srcObject = null;
    showFigures(null, test);
    status(`${NAMES[test]}: connecting…`);
    let t;
    try {
      const c = await host.client();
      const onReport = (r) => showFigures(r, test);
      if (test === 'echo') {
        const media = host.media();
        if (!media) throw new Error('Turn the camera or the microphone on to test them.');
        t = await c.startEchoTest({ ...media, onReport });
      } else {
        t = await c.probeNetwork({ onReport });
      }
    } catch (e) {
      starting = false;
      setBusy(false);
      status(`${NAMES[test]} refused: ${e.message}`, 'error');
      return;
    }
    starting = false;
    running = t;
    app.mediaTest = t;
    if (test === 'echo') {
      $('mt-video').srcObject = t.remoteStream;
      status(`${NAMES[test]} running: you see and hear yourself ${(t.delayMs / 1000).toFixed(1)} s late (${t.seconds} s).`);
    } else {
      status(`${NAMES[test]} running (${t.seconds} s).`);
    }
    let text;
    let kind = '';
    try {
      const s = await t.done;
      text = s.reason === 'left' ? `${NAMES[test]} stopped.` : s.reason === 'time' ? `${NAMES[test]} done.` : `${NAMES[test]} ended: ${s.message}`;
      if (s.reason === 'failed' || s.reason === 'shutdown') kind = 'error';
    } catch (e) {
      text = `${NAMES[test]} failed: ${e.message}`;
      kind = 'error';
    }
    running = null;
    app.mediaTest = null;
    $('mt-video').srcObject = null;
    setBusy(false);
    status(text, kind);
  }

  $('echo-test-btn').addEventListener('click', () => run('echo'));
  $('probe-btn').addEventListener('click', () => run('probe'));
  $('mt-stop').addEventListener('click', () => running?.stop());

  return {
    /** Stop the running test (before joining); resolves once it ended. */
    async stop() {
      if (running) await running.stop().catch(() => {});
    },
  };
}
