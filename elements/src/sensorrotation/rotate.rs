// SPDX-License-Identifier: MIT OR Apache-2.0
//! Pixel rotation of one image plane by quarter turns, optionally mirrored (pixel output).
//!
//! The result is what `videoflip video-direction=auto` shows for the orientation's
//! `image-orientation` tag: mirror horizontally first (if `flip`), then rotate clockwise.
//!
//! Rotations that swap width and height move pixels in 8x8 blocks: eight source rows are
//! read (eight contiguous elements each) and written as eight destination rows, so every
//! cache line read or written is used for eight elements instead of one (64x64 tiles measured
//! no faster than bands of eight rows). One- and two-byte elements (luma, grey, planar
//! and semi-planar chroma) are transposed in registers (`u64` rows). Element sizes 3, 4, 6
//! and 8 bytes get a specialised copy; others a generic one.
//!
//! ```
//! use gststreamwire::orientation::{Orientation, Rotation};
//! use gststreamwire::sensorrotation::rotate::{PlaneGeom, rotate_plane};
//! // a b c      d a
//! // d e f  ->  e b
//! //            f c
//! let s = PlaneGeom { width: 3, height: 2, elem: 1, stride: 3 };
//! let d = PlaneGeom { width: 2, height: 3, elem: 1, stride: 2 };
//! let mut out = [0u8; 6];
//! rotate_plane(b"abcdef", s, &mut out, d, Orientation::rotated(Rotation::R90)).unwrap();
//! assert_eq!(&out, b"daebfc");
//! ```

use crate::orientation::{Orientation, Rotation};

/// One plane: `width` x `height` elements of `elem` bytes, rows `stride` bytes apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneGeom {
    /// Elements per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Bytes per element (pixel stride of the plane's component).
    pub elem: usize,
    /// Bytes between rows.
    pub stride: usize,
}

impl PlaneGeom {
    /// Bytes the plane spans (the last row without its padding).
    fn span(self) -> usize {
        self.height
            .checked_sub(1)
            .map_or(0, |h| h * self.stride + self.width * self.elem)
    }
}

/// Why a plane could not be rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateError {
    /// The destination geometry is not the rotated source geometry.
    Geometry,
    /// A buffer is smaller than its geometry.
    TooSmall,
}

impl std::fmt::Display for RotateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RotateError::Geometry => "destination geometry is not the rotated source geometry",
            RotateError::TooSmall => "a plane buffer is smaller than its geometry",
        })
    }
}

impl std::error::Error for RotateError {}

/// Where destination pixels come from, for the four transforms that swap the axes:
/// `dst(x, y) = src(sx(y), sy(x))` with `sx(y) = y` or `W-1-y`, `sy(x) = x` or `H-1-x`.
#[derive(Clone, Copy)]
struct Transpose {
    rev_x: bool,
    rev_y: bool,
}

/// For the four that keep them: `dst(x, y) = src(x or W-1-x, y or H-1-y)`.
#[derive(Clone, Copy)]
struct Straight {
    rev_x: bool,
    rev_y: bool,
}

enum Plan {
    Straight(Straight),
    Transpose(Transpose),
}

fn plan(o: Orientation) -> Plan {
    // Mirror first, then rotate clockwise (the `flip-rotate-N` meaning videoflip applies).
    match (o.flip, o.rotation) {
        (false, Rotation::R0) => Plan::Straight(Straight {
            rev_x: false,
            rev_y: false,
        }),
        (false, Rotation::R180) => Plan::Straight(Straight {
            rev_x: true,
            rev_y: true,
        }),
        (true, Rotation::R0) => Plan::Straight(Straight {
            rev_x: true,
            rev_y: false,
        }),
        (true, Rotation::R180) => Plan::Straight(Straight {
            rev_x: false,
            rev_y: true,
        }),
        (false, Rotation::R90) => Plan::Transpose(Transpose {
            rev_x: false,
            rev_y: true,
        }),
        (false, Rotation::R270) => Plan::Transpose(Transpose {
            rev_x: true,
            rev_y: false,
        }),
        (true, Rotation::R90) => Plan::Transpose(Transpose {
            rev_x: true,
            rev_y: true,
        }),
        (true, Rotation::R270) => Plan::Transpose(Transpose {
            rev_x: false,
            rev_y: false,
        }),
    }
}

/// Writes `src` transformed by `o` into `dst`. `dst` must have the swapped geometry when the
/// rotation is 90 or 270 degrees (width = source height, height = source width) and the same
/// element size.
pub fn rotate_plane(
    src: &[u8],
    s: PlaneGeom,
    dst: &mut [u8],
    d: PlaneGeom,
    o: Orientation,
) -> Result<(), RotateError> {
    let (ew, eh) = if o.rotation.swaps_dimensions() {
        (s.height, s.width)
    } else {
        (s.width, s.height)
    };
    if d.width != ew || d.height != eh || d.elem != s.elem || s.elem == 0 {
        return Err(RotateError::Geometry);
    }
    if src.len() < s.span() || dst.len() < d.span() {
        return Err(RotateError::TooSmall);
    }
    if s.width == 0 || s.height == 0 {
        return Ok(());
    }
    match plan(o) {
        Plan::Straight(p) => match s.elem {
            1 => straight::<1>(src, s, dst, d, p),
            2 => straight::<2>(src, s, dst, d, p),
            3 => straight::<3>(src, s, dst, d, p),
            4 => straight::<4>(src, s, dst, d, p),
            6 => straight::<6>(src, s, dst, d, p),
            8 => straight::<8>(src, s, dst, d, p),
            _ => straight_any(src, s, dst, d, p),
        },
        Plan::Transpose(p) => match s.elem {
            1 => transpose::<1>(src, s, dst, d, p),
            2 => transpose::<2>(src, s, dst, d, p),
            3 => transpose::<3>(src, s, dst, d, p),
            4 => transpose::<4>(src, s, dst, d, p),
            6 => transpose::<6>(src, s, dst, d, p),
            8 => transpose::<8>(src, s, dst, d, p),
            _ => transpose_any(src, s, dst, d, p),
        },
    }
    Ok(())
}

fn src_row(s: PlaneGeom, rev_y: bool, y: usize) -> usize {
    if rev_y { s.height - 1 - y } else { y }
}

fn straight<const E: usize>(src: &[u8], s: PlaneGeom, dst: &mut [u8], d: PlaneGeom, p: Straight) {
    let bytes = s.width * E;
    for y in 0..d.height {
        let sy = src_row(s, p.rev_y, y);
        let srow = &src[sy * s.stride..sy * s.stride + bytes];
        let drow = &mut dst[y * d.stride..y * d.stride + bytes];
        if p.rev_x {
            for (o, i) in drow.chunks_exact_mut(E).zip(srow.chunks_exact(E).rev()) {
                o.copy_from_slice(i);
            }
        } else {
            drow.copy_from_slice(srow);
        }
    }
}

fn straight_any(src: &[u8], s: PlaneGeom, dst: &mut [u8], d: PlaneGeom, p: Straight) {
    let (e, bytes) = (s.elem, s.width * s.elem);
    for y in 0..d.height {
        let sy = src_row(s, p.rev_y, y);
        let srow = &src[sy * s.stride..sy * s.stride + bytes];
        let drow = &mut dst[y * d.stride..y * d.stride + bytes];
        if p.rev_x {
            for (o, i) in drow.chunks_exact_mut(e).zip(srow.chunks_exact(e).rev()) {
                o.copy_from_slice(i);
            }
        } else {
            drow.copy_from_slice(srow);
        }
    }
}

/// Block edge: 8x8 elements per block.
const B: usize = 8;

/// Swap steps transposing a square matrix whose rows are little-endian `u64`s: (row
/// distance, lane shift in bits, mask of the low lanes).
type Steps = [(usize, u32, u64)];

/// 8x8 bytes: swap 4x4, then 2x2, then 1x1 blocks.
const BYTE_STEPS: [(usize, u32, u64); 3] = [
    (4, 32, 0x0000_0000_FFFF_FFFF),
    (2, 16, 0x0000_FFFF_0000_FFFF),
    (1, 8, 0x00FF_00FF_00FF_00FF),
];

/// 4x4 16-bit lanes: swap 2x2, then 1x1 blocks.
const U16_STEPS: [(usize, u32, u64); 2] = [
    (2, 32, 0x0000_0000_FFFF_FFFF),
    (1, 16, 0x0000_FFFF_0000_FFFF),
];

/// Transposes in place the matrix held in `r` (lane k of `r[i]` is element (i, k)).
#[inline(always)]
fn transpose_lanes(r: &mut [u64], steps: &Steps) {
    for &(dist, shift, lo) in steps {
        for i in (0..r.len()).filter(|i| i & dist == 0) {
            let (a, b) = (r[i], r[i + dist]);
            r[i] = (a & lo) | ((b & lo) << shift);
            r[i + dist] = ((a >> shift) & lo) | (b & !lo);
        }
    }
}

fn load_u64(src: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&src[off..off + 8]);
    u64::from_le_bytes(b)
}

/// One 8x8 block: destination rows `y0..y0+8`, columns `x0..x0+8`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block<const E: usize>(
    src: &[u8],
    s: PlaneGeom,
    dst: &mut [u8],
    d: PlaneGeom,
    p: Transpose,
    c0: usize,
    sy: impl Fn(usize) -> usize,
    (x0, y0): (usize, usize),
) {
    if E == 1 {
        let mut rows = [0u64; B];
        for (i, r) in rows.iter_mut().enumerate() {
            *r = load_u64(src, sy(x0 + i) * s.stride + c0);
        }
        transpose_lanes(&mut rows, &BYTE_STEPS);
        for j in 0..B {
            let k = if p.rev_x { B - 1 - j } else { j };
            let off = (y0 + j) * d.stride + x0;
            dst[off..off + B].copy_from_slice(&rows[k].to_le_bytes());
        }
        return;
    }
    if E == 2 {
        // Four 4x4 sub-blocks of 16-bit lanes, one u64 per sub-block row: sub-block (bi, bj)
        // of the source is sub-block (bj, bi) of the destination, transposed.
        let mut out = [[0u64; 2]; B];
        // Sub-block indices address both halves of `out`: plain indices read clearest.
        #[allow(clippy::needless_range_loop)]
        for bi in 0..2 {
            for bj in 0..2 {
                let mut m = [0u64; 4];
                for (k, r) in m.iter_mut().enumerate() {
                    *r = load_u64(src, sy(x0 + 4 * bi + k) * s.stride + (c0 + 4 * bj) * 2);
                }
                transpose_lanes(&mut m, &U16_STEPS);
                for (k, r) in m.into_iter().enumerate() {
                    out[4 * bj + k][bi] = r;
                }
            }
        }
        for j in 0..B {
            let k = if p.rev_x { B - 1 - j } else { j };
            let off = (y0 + j) * d.stride + x0 * 2;
            dst[off..off + 8].copy_from_slice(&out[k][0].to_le_bytes());
            dst[off + 8..off + 16].copy_from_slice(&out[k][1].to_le_bytes());
        }
        return;
    }
    let mut blk = [[[0u8; E]; B]; B];
    for (i, row) in blk.iter_mut().enumerate() {
        let off = sy(x0 + i) * s.stride + c0 * E;
        let line = &src[off..off + B * E];
        for (k, el) in row.iter_mut().enumerate() {
            el.copy_from_slice(&line[k * E..k * E + E]);
        }
    }
    for j in 0..B {
        // Element j of the destination row is column sx(y0 + j) of the source.
        let k = if p.rev_x { B - 1 - j } else { j };
        let off = (y0 + j) * d.stride + x0 * E;
        let out = &mut dst[off..off + B * E];
        for (i, el) in out.chunks_exact_mut(E).enumerate() {
            el.copy_from_slice(&blk[i][k]);
        }
    }
}

fn transpose<const E: usize>(src: &[u8], s: PlaneGeom, dst: &mut [u8], d: PlaneGeom, p: Transpose) {
    // dst(x, y) = src(sx(y), sy(x)); dst is s.height wide and s.width high.
    let sx = |y: usize| if p.rev_x { s.width - 1 - y } else { y };
    let sy = |x: usize| if p.rev_y { s.height - 1 - x } else { x };
    let full_y = d.height / B * B;
    let full_x = d.width / B * B;
    // Bands of eight destination rows (eight source columns), left to right: the writes
    // are sequential and the source columns' cache lines are reused by the next band.
    for y0 in (0..full_y).step_by(B) {
        // Source columns sx(y0..y0+8): eight contiguous elements starting at `c0`.
        let c0 = sx(y0).min(sx(y0 + B - 1));
        for x0 in (0..full_x).step_by(B) {
            block::<E>(src, s, dst, d, p, c0, sy, (x0, y0));
        }
        // Right edge of this band.
        for y in y0..y0 + B {
            copy_elems(
                src,
                s,
                dst,
                d,
                E,
                (full_x..d.width).map(|x| (x, y)),
                &sx,
                &sy,
            );
        }
    }
    // Bottom edge.
    for y in full_y..d.height {
        copy_elems(src, s, dst, d, E, (0..d.width).map(|x| (x, y)), &sx, &sy);
    }
}

#[allow(clippy::too_many_arguments)]
fn copy_elems(
    src: &[u8],
    s: PlaneGeom,
    dst: &mut [u8],
    d: PlaneGeom,
    e: usize,
    points: impl Iterator<Item = (usize, usize)>,
    sx: &dyn Fn(usize) -> usize,
    sy: &dyn Fn(usize) -> usize,
) {
    for (x, y) in points {
        let so = sy(x) * s.stride + sx(y) * e;
        let dof = y * d.stride + x * e;
        dst[dof..dof + e].copy_from_slice(&src[so..so + e]);
    }
}

fn transpose_any(src: &[u8], s: PlaneGeom, dst: &mut [u8], d: PlaneGeom, p: Transpose) {
    let sx = |y: usize| if p.rev_x { s.width - 1 - y } else { y };
    let sy = |x: usize| if p.rev_y { s.height - 1 - x } else { x };
    for y in 0..d.height {
        copy_elems(
            src,
            s,
            dst,
            d,
            s.elem,
            (0..d.width).map(|x| (x, y)),
            &sx,
            &sy,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obvious per-element definition, to check the block code against.
    fn reference(src: &[u8], s: PlaneGeom, d: PlaneGeom, o: Orientation) -> Vec<u8> {
        let mut out = vec![0u8; d.span()];
        let e = s.elem;
        for y in 0..d.height {
            for x in 0..d.width {
                // Undo "rotate clockwise" then "mirror" to find the source pixel.
                let (mut ux, uy) = match o.rotation {
                    Rotation::R0 => (x, y),
                    Rotation::R90 => (y, s.height - 1 - x),
                    Rotation::R180 => (s.width - 1 - x, s.height - 1 - y),
                    Rotation::R270 => (s.width - 1 - y, x),
                };
                if o.flip {
                    ux = s.width - 1 - ux;
                }
                let so = uy * s.stride + ux * e;
                out[y * d.stride + x * e..y * d.stride + x * e + e]
                    .copy_from_slice(&src[so..so + e]);
            }
        }
        out
    }

    fn geoms(w: usize, h: usize, e: usize, o: Orientation) -> (PlaneGeom, PlaneGeom) {
        let s = PlaneGeom {
            width: w,
            height: h,
            elem: e,
            stride: w * e + 5,
        };
        let (dw, dh) = if o.rotation.swaps_dimensions() {
            (h, w)
        } else {
            (w, h)
        };
        let d = PlaneGeom {
            width: dw,
            height: dh,
            elem: e,
            stride: dw * e + 3,
        };
        (s, d)
    }

    #[test]
    fn quarter_turns_move_pixels_clockwise() {
        // a b c
        // d e f
        let run = |o: Orientation| {
            let (s, d) = geoms(3, 2, 1, o);
            let src: Vec<u8> = b"abc\0\0\0\0\0def".to_vec();
            let mut dst = vec![0u8; d.span()];
            rotate_plane(&src, s, &mut dst, d, o).unwrap();
            (0..d.height)
                .flat_map(|y| dst[y * d.stride..y * d.stride + d.width].to_vec())
                .collect::<Vec<u8>>()
        };
        let r = |rot| Orientation::rotated(rot);
        let f = |rotation| Orientation {
            rotation,
            flip: true,
        };
        assert_eq!(run(r(Rotation::R0)), b"abcdef");
        assert_eq!(run(r(Rotation::R90)), b"daebfc");
        assert_eq!(run(r(Rotation::R180)), b"fedcba");
        assert_eq!(run(r(Rotation::R270)), b"cfbead");
        // Mirrored first: c b a / f e d, then rotated.
        assert_eq!(run(f(Rotation::R0)), b"cbafed");
        assert_eq!(run(f(Rotation::R90)), b"fcebda");
        assert_eq!(run(f(Rotation::R180)), b"defabc");
        assert_eq!(run(f(Rotation::R270)), b"adbecf");
    }

    #[test]
    fn blocks_and_edges_match_the_reference_for_every_element_size() {
        for e in [1, 2, 3, 4, 5, 6, 8] {
            for (w, h) in [
                (1, 1),
                (8, 8),
                (17, 9),
                (9, 17),
                (24, 16),
                (3, 30),
                (137, 75),
            ] {
                for flip in [false, true] {
                    for rotation in Rotation::ALL {
                        let o = Orientation { rotation, flip };
                        let (s, d) = geoms(w, h, e, o);
                        let src: Vec<u8> = (0..s.span()).map(|i| (i * 7 + i / 251) as u8).collect();
                        let mut dst = vec![0u8; d.span()];
                        rotate_plane(&src, s, &mut dst, d, o).unwrap();
                        assert_eq!(dst, reference(&src, s, d, o), "{w}x{h} e={e} {o:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn wrong_geometry_is_refused_not_a_panic() {
        let o = Orientation::rotated(Rotation::R90);
        let (s, d) = geoms(4, 2, 2, o);
        let src = vec![0u8; s.span()];
        let mut dst = vec![0u8; d.span()];
        assert_eq!(
            rotate_plane(&src, s, &mut dst, s, o),
            Err(RotateError::Geometry)
        );
        assert_eq!(
            rotate_plane(&src[..3], s, &mut dst, d, o),
            Err(RotateError::TooSmall)
        );
        assert_eq!(
            rotate_plane(&src, s, &mut dst[..1], d, o),
            Err(RotateError::TooSmall)
        );
    }
}
