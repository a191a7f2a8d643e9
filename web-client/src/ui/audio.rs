//! Alarm tones (Web Audio): a high alarm is three quick high beeps every 4 s,
//! a medium one two lower beeps every 8 s, so they can be told apart by ear.
//! Browsers only allow sound after a tap, so the board asks for one; each
//! device can mute itself.

use std::cell::{Cell, RefCell};
use web_sys::{AudioContext, AudioContextState, OscillatorType};

/// Sound for one board.
#[derive(Default)]
pub struct Sound {
    ctx: RefCell<Option<AudioContext>>,
    last_played: Cell<f64>,
}

/// Which pattern to play.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tone {
    /// Three 988 Hz beeps, every 4 s.
    High,
    /// Two 659 Hz beeps, every 8 s.
    Medium,
}

impl Sound {
    /// Starts audio (must run inside a user gesture).
    pub fn enable(&self) {
        if self.ctx.borrow().is_none() {
            *self.ctx.borrow_mut() = AudioContext::new().ok();
        }
        if let Some(ctx) = self.ctx.borrow().as_ref() {
            let _ = ctx.resume();
        }
    }

    /// Audio was started but the browser holds it suspended: it was started
    /// by something the browser does not count as a gesture (Escape, say).
    pub fn held(&self) -> bool {
        self.ctx
            .borrow()
            .as_ref()
            .is_some_and(|ctx| ctx.state() == AudioContextState::Suspended)
    }

    /// Releases the audio device (leaving the board).
    pub fn close(&self) {
        if let Some(ctx) = self.ctx.borrow_mut().take() {
            let _ = ctx.close();
        }
    }

    /// Plays `tone` if its repeat interval has passed since the last tone.
    pub fn tick(&self, tone: Option<Tone>) {
        let Some(tone) = tone else { return };
        let ctx = self.ctx.borrow();
        let Some(ctx) = ctx.as_ref() else { return };
        let now = ctx.current_time();
        let (every, count, freq) = match tone {
            Tone::High => (4.0, 3, 988.0),
            Tone::Medium => (8.0, 2, 659.0),
        };
        if now - self.last_played.get() < every {
            return;
        }
        self.last_played.set(now);
        for i in 0..count {
            let start = now + f64::from(i) * 0.25;
            let (Ok(osc), Ok(gain)) = (ctx.create_oscillator(), ctx.create_gain()) else {
                return;
            };
            osc.set_type(OscillatorType::Sine);
            osc.frequency().set_value(freq);
            let g = gain.gain();
            let _ = g.set_value_at_time(0.0, start);
            let _ = g.linear_ramp_to_value_at_time(0.3, start + 0.02);
            let _ = g.linear_ramp_to_value_at_time(0.0, start + 0.15);
            let _ = osc.connect_with_audio_node(&gain);
            let _ = gain.connect_with_audio_node(&ctx.destination());
            let _ = osc.start_with_when(start);
            let _ = osc.stop_with_when(start + 0.18);
        }
    }
}
