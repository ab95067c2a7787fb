//! Track kinds across the two layers a session joins: the signalling protocol announces
//! [`TrackKind`]s (audio, video, data), the media engine carries [`MediaKind`]s (audio, video).
//! The conversions live here, in the layer that uses both, so that `webrtc` does not depend on
//! the signalling protocol.

use crate::signalling::protocol::TrackKind;
use crate::webrtc::MediaKind;

/// A media track announced through signalling has the protocol kind of the same name.
///
/// ```
/// use streamwire::signalling::protocol::TrackKind;
/// use streamwire::webrtc::MediaKind;
/// assert_eq!(TrackKind::from(MediaKind::Audio), TrackKind::Audio);
/// ```
impl From<MediaKind> for TrackKind {
    fn from(kind: MediaKind) -> Self {
        match kind {
            MediaKind::Audio => TrackKind::Audio,
            MediaKind::Video => TrackKind::Video,
        }
    }
}

/// A signalling track kind that carries no media ([`TrackKind::Data`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("track kind `{0:?}` is not audio or video")]
pub struct NotMedia(pub TrackKind);

/// The media kind of an announced track; [`TrackKind::Data`] has none.
///
/// ```
/// use streamwire::signalling::protocol::TrackKind;
/// use streamwire::session::NotMedia;
/// use streamwire::webrtc::MediaKind;
/// assert_eq!(MediaKind::try_from(TrackKind::Video), Ok(MediaKind::Video));
/// assert_eq!(MediaKind::try_from(TrackKind::Data), Err(NotMedia(TrackKind::Data)));
/// ```
impl TryFrom<TrackKind> for MediaKind {
    type Error = NotMedia;
    fn try_from(kind: TrackKind) -> Result<Self, NotMedia> {
        match kind {
            TrackKind::Audio => Ok(MediaKind::Audio),
            TrackKind::Video => Ok(MediaKind::Video),
            TrackKind::Data => Err(NotMedia(kind)),
        }
    }
}
