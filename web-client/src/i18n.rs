//! The participant page's words, in English and Spanish. The page starts in
//! the browser's language and offers a switch. (The staff board is English.)

/// A language.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lang {
    /// English.
    En,
    /// Spanish.
    Es,
}

impl Lang {
    /// The language for a browser language tag ("es-MX" → Spanish); English otherwise.
    pub fn from_tag(tag: &str) -> Lang {
        if tag.to_ascii_lowercase().starts_with("es") {
            Lang::Es
        } else {
            Lang::En
        }
    }

    /// The other one (for the switch).
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Es,
            Lang::Es => Lang::En,
        }
    }

    /// The tag for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }
}

macro_rules! texts {
    ($($key:ident => $en:literal, $es:literal;)*) => {
        /// Everything the participant page says.
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        #[allow(missing_docs)]
        pub enum Key { $($key),* }

        impl Key {
            /// Every key.
            pub const ALL: &'static [Key] = &[$(Key::$key),*];
        }

        /// The words for `key` in `lang`.
        pub fn text(lang: Lang, key: Key) -> &'static str {
            match (lang, key) {
                $((Lang::En, Key::$key) => $en, (Lang::Es, Key::$key) => $es,)*
            }
        }
    };
}

texts! {
    LanguageSwitch => "Español", "English";
    JoinTitle => "Join your session", "Únete a tu sesión";
    JoinCode => "The code your facilitator gave you", "El código que te dio tu facilitador";
    JoinButton => "Join", "Entrar";
    JoinFailed => "Could not join", "No se pudo entrar";
    Connecting => "Connecting…", "Conectando…";
    Connected => "Connected", "Conectado";
    Offline => "Offline — your taps are kept and sent when the connection returns", "Sin conexión — tus toques se guardan y se envían al volver la conexión";
    Welcome => "Welcome", "Bienvenido/a";
    Mood => "Your mood now: 0 low, 10 high", "Tu ánimo ahora: 0 bajo, 10 alto";
    Anxiety => "How anxious you feel: 0 not at all, 10 very", "Cuánta ansiedad sientes: 0 nada, 10 mucha";
    Intention => "Your intention for today (optional)", "Tu intención para hoy (opcional)";
    Fasting => "I have fasted as instructed", "He hecho el ayuno indicado";
    RideHome => "Someone will drive me home (I will not drive today)", "Alguien me llevará a casa (hoy no conduciré)";
    Touch => "I agree to supportive touch (a hand on the shoulder)", "Acepto el contacto de apoyo (una mano en el hombro)";
    Arrived => "I have arrived", "He llegado";
    ImOk => "I'm OK", "Estoy bien";
    NeedSupport => "I need support", "Necesito apoyo";
    AddReason => "Tell us more (optional)", "Cuéntanos más (opcional)";
    Nausea => "Nausea", "Náuseas";
    Bathroom => "Bathroom", "Baño";
    Anxious => "Anxious", "Ansiedad";
    Cold => "Cold", "Frío";
    Other => "Other", "Otra cosa";
    SupportSent => "Request sent — someone is coming", "Solicitud enviada — alguien viene";
    SupportSeen => "A facilitator has seen your request", "Un facilitador ha visto tu solicitud";
    OkNoted => "Thank you — noted", "Gracias — anotado";
    Saved => "Saved — it will be sent when the connection returns", "Guardado — se enviará al volver la conexión";
    AfterTitle => "After the session", "Después de la sesión";
    MoodAfter => "Your mood now: 0 low, 10 high", "Tu ánimo ahora: 0 bajo, 10 alto";
    Journal => "Journal — seen only by you and your care team", "Diario — solo lo ven tú y tu equipo de cuidado";
    Save => "Save", "Guardar";
    AfterDone => "Thank you. Take good care of yourself today.", "Gracias. Cuídate mucho hoy.";
    FromFacilitators => "From your facilitators", "De tus facilitadores";
    Refused => "Not sent", "No enviado";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_exists_in_both_languages() {
        for key in Key::ALL {
            let (en, es) = (text(Lang::En, *key), text(Lang::Es, *key));
            assert!(!en.is_empty() && !es.is_empty(), "{key:?}");
        }
        assert_eq!(Lang::from_tag("es-MX"), Lang::Es);
        assert_eq!(Lang::from_tag("en-GB"), Lang::En);
        assert_eq!(Lang::from_tag("fr"), Lang::En);
        assert_eq!(Lang::Es.other(), Lang::En);
    }
}
