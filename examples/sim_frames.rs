//! Renders a few frames of the simulator to PNG files: `cargo run --release --example
//! sim_frames -- OUT_DIR`.
use rwt::sim::{Autopilot, CameraConfig, DrivingEnv, EnvConfig, Environment, Weather, TRAINING_TOWN};

fn main() -> rwt::Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "sim-frames".into());
    std::fs::create_dir_all(&out).map_err(|e| rwt::Error::invalid("out", &out, e.to_string()))?;
    for weather in Weather::ALL {
        let cfg = EnvConfig::new(TRAINING_TOWN).with_weather(weather).with_camera(CameraConfig::dataset());
        let mut env = DrivingEnv::new(cfg)?;
        let mut obs = env.reset(3)?;
        let driver = Autopilot::default();
        for _ in 0..40 {
            let t = env.step(driver.act(&env))?;
            obs = t.observation;
            if t.terminated || t.truncated {
                break;
            }
        }
        let save = |img: &rwt::image::RgbImage, name: &str| {
            img.save(format!("{out}/{name}")).map_err(|e| rwt::Error::invalid("png", name.to_string(), e.to_string()))
        };
        save(&obs.frame.rgb, &format!("{weather}-rgb.png"))?;
        save(&obs.frame.label_image(), &format!("{weather}-labels.png"))?;
        save(&obs.frame.depth_image(150.0), &format!("{weather}-depth.png"))?;
        save(&env.map_image(60.0, 3.0), &format!("{weather}-map.png"))?;
    }
    Ok(())
}
