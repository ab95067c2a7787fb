//! The reference pair of `streamwire bench impairment`: gst-plugins-rs `webrtcsink` →
//! `webrtcsrc` (the `gst-plugin-webrtc` crate, statically registered) through its own
//! signalling server (`gst-plugin-webrtc-signalling`, in this process on 127.0.0.1), under the
//! same impairment as the Streamwire cell and measured the same way: the same painted frame
//! counter before the encoder, the same readings at the decoder output and at a
//! clock-synchronised `appsink`, the same freeze definition and window.
//!
//! Both elements run with their shipped defaults (Google Congestion Control, RTX, RED/ULPFEC,
//! their own encoder settings and a 200 ms `webrtcbin` latency), except what the namespace
//! needs: no STUN server, and ICE restricted to 127.0.0.1 as for the Streamwire peers. Audio
//! concealment is not reported for this pair (`audio_concealed_pct` is `null`): its decoder
//! sits inside `webrtcsrc`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use parking_lot::Mutex;

use super::impairment::{CellReport, ImpairmentOptions, Measured};
use super::latency::{
    BenchError, FirstFrame, FrameReading, Shared, measure_from, now_ns, summarize,
};
use streamwire::encoder::Codec;
use streamwire::impair::ReceiveImpairment;
use streamwire::session::latency::{read_stamp, stamp_frames};
use streamwire::webrtc::freeze::FreezeDetector;
use streamwire::webrtc::repair::{DirectionCounts, SendMeter};

/// What [`CellReport::stack`] says for this pair.
pub const STACK: &str = "webrtcsink-webrtcsrc";

/// Register the `rswebrtc` plugin (once per process).
fn register() -> Result<(), BenchError> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| gstrswebrtc::plugin_register_static().map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| BenchError::Init(format!("registering webrtcsink/webrtcsrc: {e}")))
}

/// The gst-plugins-rs signalling server on 127.0.0.1 (a free port), running on `rt` until
/// the runtime is dropped; its `ws://` URL.
fn signalling_server(rt: &tokio::runtime::Runtime) -> Result<String, BenchError> {
    let _enter = rt.enter();
    let server = gst_plugin_webrtc_signalling::server::Server::spawn(
        gst_plugin_webrtc_signalling::handlers::Handler::new,
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
        .map_err(|e| BenchError::Run(format!("reference signalling server: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| BenchError::Run(format!("reference signalling server: {e}")))?;
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mut server = server.clone();
            tokio::spawn(async move {
                if let Err(e) = server.accept_async(stream).await {
                    tracing::debug!("reference signalling connection: {e}");
                }
            });
        }
    });
    Ok(format!("ws://{addr}"))
}

/// Restrict ICE to UDP on 127.0.0.1 on every `webrtcbin` the element's signaller announces,
/// and hand each one to `on_ready`.
fn on_webrtcbin(element: &gst::Element, on_ready: impl Fn(&gst::Element) + Send + Sync + 'static) {
    let signaller = element.property::<glib::Object>("signaller");
    signaller.connect("webrtcbin-ready", false, move |args| {
        if let Some(Ok(webrtcbin)) = args.get(2).map(|v| v.get::<gst::Element>()) {
            if let Some(agent) = webrtcbin.property::<Option<glib::Object>>("ice-agent") {
                agent.emit_by_name::<bool>("add-local-ip-address", &[&"127.0.0.1"]);
                // As for the Streamwire peers: no TCP pair that would never lose a packet.
                agent.set_property("ice-tcp", false);
            }
            on_ready(&webrtcbin);
        }
        None
    });
}

fn element(pipeline: &gst::Bin, name: &str) -> Result<gst::Element, BenchError> {
    pipeline
        .by_name(name)
        .ok_or_else(|| BenchError::Run(format!("reference pipeline has no `{name}`")))
}

fn launch(description: &str) -> Result<gst::Pipeline, BenchError> {
    let bin = gst::parse::bin_from_description(description, false)
        .map_err(|e| BenchError::Run(format!("reference pipeline `{description}`: {e}")))?;
    let pipeline = gst::Pipeline::new();
    pipeline
        .add(&bin)
        .map_err(|e| BenchError::Run(format!("reference pipeline: {e}")))?;
    Ok(pipeline)
}

/// The publisher: the same picture and tone as the Streamwire publisher, counter painted
/// before `webrtcsink` encodes.
fn publisher(opts: &ImpairmentOptions, uri: &str) -> Result<gst::Pipeline, BenchError> {
    let caps = match opts.codec {
        Codec::H264 => "video/x-h264",
        _ => "video/x-vp8",
    };
    launch(&format!(
        "webrtcsink name=ws signaller::uri={uri} video-caps={caps} audio-caps=audio/x-opus \
         videotestsrc is-live=true pattern=ball \
         ! video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 \
         ! identity name=stamp ! ws. \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! ws.",
        w = opts.width,
        h = opts.height,
        fps = opts.fps,
    ))
}

/// The subscriber: `webrtcsrc` connecting to the first producer; decoded video to a
/// clock-synchronised `appsink`, audio to a synchronised `fakesink`.
fn subscriber(
    uri: &str,
    shared: &Arc<Shared>,
    first: &Arc<FirstFrame>,
    freezes: &Arc<Mutex<FreezeDetector>>,
) -> Result<gst::Pipeline, BenchError> {
    let pipeline = launch(&format!(
        "webrtcsrc name=wr connect-to-first-producer=true signaller::uri={uri}"
    ))?;
    let src = element(pipeline.upcast_ref(), "wr")?;
    let (shared, first, freezes) = (shared.clone(), first.clone(), freezes.clone());
    src.connect_pad_added(move |src, pad| {
        let Some(bin) = src.parent().and_downcast::<gst::Bin>() else {
            return;
        };
        let video = pad.name().starts_with("video");
        // Raw caps downstream make `webrtcsrc` decode (it would hand out RTP otherwise).
        let raw = gst::Caps::builder(if video { "video/x-raw" } else { "audio/x-raw" }).build();
        let sink = if video {
            gst_app::AppSink::builder()
                .caps(&raw)
                .sync(true)
                .build()
                .upcast()
        } else {
            match gst::ElementFactory::make("fakesink")
                .property("sync", true)
                .build()
            {
                Ok(s) => s,
                Err(_) => return,
            }
        };
        let filter = match gst::ElementFactory::make("capsfilter")
            .property("caps", &raw)
            .build()
        {
            Ok(q) => q,
            Err(_) => return,
        };
        if bin.add_many([&filter, &sink]).is_err() || filter.link(&sink).is_err() {
            tracing::warn!("reference subscriber: cannot add its sink");
            return;
        }
        let _ = filter.sync_state_with_parent();
        let _ = sink.sync_state_with_parent();
        if let Some(fsink) = filter.static_pad("sink")
            && pad.link(&fsink).is_err()
        {
            tracing::warn!("reference subscriber: cannot link {}", pad.name());
        }
        if !video {
            return;
        }
        // Decoder output: `webrtcsrc`'s pad.
        let (s, f, fr) = (shared.clone(), first.clone(), freezes.clone());
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let t_ns = now_ns(&s.clock);
            let reading = match (info.buffer(), pad.current_caps()) {
                (Some(buf), Some(caps)) => match read_stamp(buf, &caps) {
                    Some(n) => FrameReading::Decoded { n, t_ns },
                    None => FrameReading::Unreadable,
                },
                _ => return gst::PadProbeReturn::Ok,
            };
            if s.measuring.load(Ordering::Relaxed) {
                fr.lock().frame(t_ns as f64 / 1e6);
            }
            s.record(&f, reading);
            gst::PadProbeReturn::Ok
        });
        let Ok(appsink) = sink.downcast::<gst_app::AppSink>() else {
            return;
        };
        let (s, f) = (shared.clone(), first.clone());
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let t_ns = now_ns(&s.clock);
                    if let (Some(buf), Some(caps)) = (sample.buffer(), sample.caps())
                        && let Some(n) = read_stamp(buf, &caps.to_owned())
                    {
                        s.record(&f, FrameReading::Rendered { n, t_ns });
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    });
    Ok(pipeline)
}

/// One cell with the reference pair: `impairment` at the subscriber (the nftables loss, if
/// any, is already in place for the whole namespace).
pub(crate) fn cell(
    opts: &ImpairmentOptions,
    loss: u32,
    jitter: u32,
    impairment: ReceiveImpairment,
) -> Result<CellReport, BenchError> {
    streamwire::gst_init::init().map_err(|e| BenchError::Init(e.to_string()))?;
    register()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| BenchError::Run(format!("runtime: {e}")))?;
    let uri = signalling_server(&rt)?;
    let shared = Shared::new(gst::SystemClock::obtain());
    let first = Arc::new(FirstFrame::default());
    let freezes = Arc::new(Mutex::new(FreezeDetector::default()));

    let publisher = publisher(opts, &uri)?;
    {
        let stamp = element(publisher.upcast_ref(), "stamp")?;
        let pad = stamp
            .static_pad("src")
            .ok_or_else(|| BenchError::Run("identity without a src pad".into()))?;
        let s = shared.clone();
        stamp_frames(&pad, shared.clock.clone(), move |n, t| {
            s.captured.remember(n, t);
            if s.measuring.load(Ordering::Relaxed) {
                s.frames_in_window.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let sink = element(publisher.upcast_ref(), "ws")?;
    sink.set_property("stun-server", None::<String>);
    let meters: Arc<Mutex<Vec<SendMeter>>> = Arc::default();
    {
        let meters = meters.clone();
        on_webrtcbin(&sink, move |webrtcbin| {
            meters.lock().push(SendMeter::attach(webrtcbin));
        });
    }

    let subscriber = subscriber(&uri, &shared, &first, &freezes)?;
    let src = element(subscriber.upcast_ref(), "wr")?;
    src.set_property("stun-server", None::<String>);
    let webrtcbins: Arc<Mutex<Vec<gst::Element>>> = Arc::default();
    {
        let webrtcbins = webrtcbins.clone();
        on_webrtcbin(&src, move |w| webrtcbins.lock().push(w.clone()));
    }
    let impaired = streamwire::impair::impair_receiver(subscriber.upcast_ref(), impairment);

    let result = (|| {
        publisher
            .set_state(gst::State::Playing)
            .map_err(|e| BenchError::Run(format!("reference publisher: {e}")))?;
        // The subscriber joins a publisher that is already streaming, as in a call.
        std::thread::sleep(Duration::from_secs(1));
        first.start();
        subscriber
            .set_state(gst::State::Playing)
            .map_err(|e| BenchError::Run(format!("reference subscriber: {e}")))?;
        let lopts = opts.latency_options();
        let sent = || {
            meters
                .lock()
                .iter()
                .map(SendMeter::counts)
                .fold(DirectionCounts::default(), |a, b| a + b)
        };
        let before = Arc::new(Mutex::new(None));
        let w = {
            let before = before.clone();
            let sent = &sent;
            measure_from(&lopts, &shared, std::slice::from_ref(&first), move || {
                *before.lock() = Some(sent())
            })?
        };
        let (s1, s0) = (sent(), before.lock().take().unwrap_or_default());
        if (impairment.burst.is_some() || jitter > 0) && impaired.load(Ordering::Relaxed) == 0 {
            return Err(BenchError::Run(
                "the reference subscriber's transport appeared before the impairment was hooked"
                    .into(),
            ));
        }
        let freezes = freezes.lock().clone();
        Ok(CellReport::new(
            STACK,
            opts,
            (loss, jitter),
            Measured {
                painted: u64::from(shared.frames_in_window.load(Ordering::Relaxed)),
                decoded: u64::from(w.min_frames),
                freezes: freezes.freezes(),
                freeze_ms: freezes.total_freeze_ms(),
                rendered: summarize(std::mem::take(&mut *shared.rendered.lock())),
                audio_concealed_pct: None,
                sent: Some(s1 - s0),
                jitter_buffer_ms: webrtcbins
                    .lock()
                    .iter()
                    .map(|w| w.property::<u32>("latency"))
                    .max(),
            },
        ))
    })();
    let _ = subscriber.set_state(gst::State::Null);
    let _ = publisher.set_state(gst::State::Null);
    rt.shutdown_background();
    result
}
