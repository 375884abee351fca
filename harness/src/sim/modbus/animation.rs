//! Values that change by themselves, so a demo shows live data without a
//! test driving every register by hand.

use super::bank::{join_u32, split_u32};

/// How an animated value changes on every tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Animation {
    /// One register counts up by one per tick, wrapping at 65535.
    Count,
    /// A float32 in two registers, high word first (ABCD), rises by `step`
    /// per tick from `min` and starts again at `min` once past `max`.
    Sawtooth {
        /// Where it starts and restarts.
        min: f32,
        /// Past this it restarts.
        max: f32,
        /// Added on every tick.
        step: f32,
    },
}

impl Animation {
    /// How many registers it occupies.
    pub(crate) fn width(self) -> usize {
        match self {
            Animation::Count => 1,
            Animation::Sawtooth { .. } => 2,
        }
    }

    /// Sets the starting value in `regs` ([`Self::width`] registers).
    pub(crate) fn start(self, regs: &mut [u16]) {
        if let Animation::Sawtooth { min, .. } = self {
            regs.copy_from_slice(&split_u32(min.to_bits()));
        }
    }

    /// Moves the value in `regs` ([`Self::width`] registers) one step on.
    pub(crate) fn step(self, regs: &mut [u16]) {
        match self {
            Animation::Count => regs[0] = regs[0].wrapping_add(1),
            Animation::Sawtooth { min, max, step } => {
                let now = f32::from_bits(join_u32(regs[0], regs[1]));
                let next = if now + step > max { min } else { now + step };
                regs.copy_from_slice(&split_u32(next.to_bits()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_wraps() {
        let mut r = [0xfffe];
        Animation::Count.step(&mut r);
        Animation::Count.step(&mut r);
        assert_eq!(r, [0]);
    }

    #[test]
    fn sawtooth_rises_then_restarts() {
        let saw = Animation::Sawtooth {
            min: 1.0,
            max: 2.0,
            step: 0.5,
        };
        let mut r = [0xffff; 2];
        saw.start(&mut r);
        let mut seen = vec![f32::from_bits(join_u32(r[0], r[1]))];
        for _ in 0..3 {
            saw.step(&mut r);
            seen.push(f32::from_bits(join_u32(r[0], r[1])));
        }
        assert_eq!(seen, [1.0, 1.5, 2.0, 1.0]);
        assert_eq!(r, [0x3f80, 0], "1.0f32 is 0x3f800000, high word first");
    }
}
