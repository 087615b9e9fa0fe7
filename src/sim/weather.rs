//! Weather and lighting presets: the "new weather" condition of Tables IV–VI.

/// A weather / lighting preset of the renderer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Weather {
    /// High sun, clear air: the training weather.
    ClearNoon,
    /// Low warm sun, dim light, long haze.
    Dusk,
    /// Overcast and wet: low contrast, dark, streaks of rain, more sensor noise.
    Rain,
    /// Dense fog: colours fade to grey within a few tens of metres.
    Fog,
}

/// The numbers behind a preset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lighting {
    /// Unit vector towards the sun (x east, y north, z up).
    pub sun: [f32; 3],
    /// Colour × intensity of direct sunlight.
    pub sun_colour: [f32; 3],
    /// Colour × intensity of ambient light.
    pub ambient: [f32; 3],
    /// Sky colour at the horizon.
    pub sky_horizon: [f32; 3],
    /// Sky colour overhead.
    pub sky_zenith: [f32; 3],
    /// Colour that distant things fade to.
    pub fog_colour: [f32; 3],
    /// Distance at which 63 % of the colour is fog (metres).
    pub visibility: f32,
    /// Contrast multiplier around mid-grey (1 = unchanged).
    pub contrast: f32,
    /// Standard deviation of the per-pixel sensor noise (0–255 scale).
    pub sensor_noise: f32,
    /// Fraction of pixels crossed by a rain streak.
    pub rain: f32,
}

impl Weather {
    /// Every preset.
    pub const ALL: [Weather; 4] = [Weather::ClearNoon, Weather::Dusk, Weather::Rain, Weather::Fog];

    /// Name used in tables and configs (`clear-noon`, `dusk`, `rain`, `fog`).
    pub fn name(self) -> &'static str {
        match self {
            Weather::ClearNoon => "clear-noon",
            Weather::Dusk => "dusk",
            Weather::Rain => "rain",
            Weather::Fog => "fog",
        }
    }

    /// The preset's numbers.
    pub fn lighting(self) -> Lighting {
        fn unit(v: [f32; 3]) -> [f32; 3] {
            let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
            v.map(|c| c / n)
        }
        match self {
            Weather::ClearNoon => Lighting {
                sun: unit([0.35, 0.45, 0.82]),
                sun_colour: [0.85, 0.82, 0.76],
                ambient: [0.42, 0.45, 0.52],
                sky_horizon: [0.72, 0.80, 0.90],
                sky_zenith: [0.30, 0.50, 0.85],
                fog_colour: [0.75, 0.80, 0.88],
                visibility: 700.0,
                contrast: 1.0,
                sensor_noise: 3.0,
                rain: 0.0,
            },
            Weather::Dusk => Lighting {
                sun: unit([-0.9, 0.3, 0.15]),
                sun_colour: [0.70, 0.42, 0.22],
                ambient: [0.22, 0.20, 0.26],
                sky_horizon: [0.85, 0.50, 0.30],
                sky_zenith: [0.20, 0.20, 0.40],
                fog_colour: [0.55, 0.40, 0.35],
                visibility: 300.0,
                contrast: 0.9,
                sensor_noise: 5.0,
                rain: 0.0,
            },
            Weather::Rain => Lighting {
                sun: unit([0.2, 0.3, 0.9]),
                sun_colour: [0.18, 0.18, 0.20],
                ambient: [0.40, 0.41, 0.44],
                sky_horizon: [0.52, 0.54, 0.56],
                sky_zenith: [0.38, 0.40, 0.43],
                fog_colour: [0.50, 0.52, 0.55],
                visibility: 140.0,
                contrast: 0.65,
                sensor_noise: 7.0,
                rain: 0.04,
            },
            Weather::Fog => Lighting {
                sun: unit([0.3, 0.4, 0.85]),
                sun_colour: [0.22, 0.22, 0.22],
                ambient: [0.55, 0.55, 0.56],
                sky_horizon: [0.72, 0.73, 0.74],
                sky_zenith: [0.66, 0.67, 0.70],
                fog_colour: [0.72, 0.73, 0.74],
                visibility: 32.0,
                contrast: 0.85,
                sensor_noise: 4.0,
                rain: 0.0,
            },
        }
    }
}

impl std::fmt::Display for Weather {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Weather {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Weather> {
        Weather::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| crate::Error::invalid("weather", s, "expected one of clear-noon, dusk, rain, fog"))
    }
}
