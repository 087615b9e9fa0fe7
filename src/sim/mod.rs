//! A driving simulator with a semantic front camera and the paper's reward: the environment
//! of reinforced ground-matrix learning (Section III.C, Fig. 4; Section IV.D, Tables IV–VI)
//! and a synthetic segmentation dataset.
//!
//! The paper drives in CARLA, which no registry this crate can depend on provides. This
//! module keeps what the method needs: a front camera that renders an image *and* per-pixel
//! Cityscapes labels (and depth), vulnerable road users and vehicles to hit, lanes and road
//! edges to leave, and crash severity.
//!
//! | part | file | paper |
//! |---|---|---|
//! | procedural towns from a seed: roads, lanes, junctions, crossings, sidewalks, buildings, walls, fences, vegetation, terrain, poles, signs, lights ([`Town`], [`TRAINING_TOWN`], [`NEW_TOWNS`]) | `town.rs` | "training town" / "new town" |
//! | weather and lighting presets ([`Weather`]) | `weather.rs` | "new weather" |
//! | cars, trucks, buses, cyclists, pedestrians, parked cars, barriers ([`Traffic`]) | `traffic.rs` | |
//! | the ego car: kinematic bicycle model, 25 km/h cap ([`Vehicle`], [`Action`]) | `vehicle.rs` | action = steer, throttle, brake |
//! | the front camera: software rasteriser → RGB, labels, depth ([`Renderer`], [`Frame`]) | `camera.rs` | state = latent map of the frames |
//! | route planner and high-level command ([`Route`], [`Command`]) | `route.rs` | measurement vector |
//! | reward `1 − α·ol − β·or − ψ·c`, ISO 26262 severity table ([`RewardConfig`], [`collision_severity`]) | `reward.rs` | Section III.C |
//! | infraction log and driving metrics ([`EpisodeLog`], [`DrivingMetrics`]) | `infraction.rs` | Tables IV–VI |
//! | `reset(seed)` / `step(action)` ([`Environment`], [`DrivingEnv`]) | `env.rs` | |
//! | N environments in parallel threads ([`VecEnv`]) | `vec_env.rs` | 10 actors |
//! | a scripted driver ([`Autopilot`]) | `autopilot.rs` | |
//! | the corridor ahead: what the Autopilot brakes for, how far the road is free ([`first_obstacle`], [`free_ahead`]) | `corridor.rs` | |
//! | the simulator as a dataset | [`crate::data::Synthetic`] | GTA5 → Cityscapes analogue |
//!
//! Conventions: metres and seconds; `x` east, `y` north, `z` up; yaw counter-clockwise from
//! east; right-hand traffic; one step is 0.1 s (CARLA's 10 fps). Walkthrough: notebook
//! `07-driving-simulator`.
//!
//! ```
//! use rwt::sim::{Autopilot, DrivingEnv, EnvConfig, Environment, TRAINING_TOWN};
//! let mut env = DrivingEnv::new(EnvConfig::new(TRAINING_TOWN))?;
//! let obs = env.reset(7)?;
//! assert_eq!(obs.frame.labels.dimensions(), (192, 96));
//! let driver = Autopilot::default();
//! let t = env.step(driver.act(&env))?;
//! assert!(t.reward <= 1.0);
//! # Ok::<(), rwt::Error>(())
//! ```

mod autopilot;
mod camera;
mod corridor;
mod env;
mod geometry;
mod infraction;
mod reward;
mod route;
mod town;
mod traffic;
mod vec_env;
mod vehicle;
mod weather;

pub use autopilot::{Autopilot, OBSTACLE_LABELS, PERCEIVED_PIXELS};
pub use camera::{CameraConfig, CameraPose, Frame, Renderer, Solid};
pub use corridor::{
    along_heading, along_route, first_obstacle, free_ahead, CORRIDOR_MARGIN_M, CORRIDOR_STEP_M, FREE_AHEAD_REACH_M,
};
pub use env::{
    DrivingEnv, EnvConfig, Environment, Measurements, Observation, StepInfo, Transition, BLOCKED_RADIUS_M,
    ROUTE_LOOKAHEAD,
};
pub use geometry::{Footprint, V2};
pub use infraction::{
    DrivingMetrics, EpisodeLog, Impact, ImpactSide, Infraction, InfractionKind, Termination, INFRACTION_ONSET,
    STANDING_KMH,
};
pub use reward::{collision_severity, lane_and_road_degrees, Obstacle, RewardConfig, Severity, CLEARANCE};
pub use route::{Command, Route, COMMAND_LEAD};
pub use town::{
    label, Ground, Junction, Lane, LotKind, Paint, Prop, PropKind, Surface, Town, TownConfig, NEW_TOWNS, TRAINING_TOWN,
};
pub use traffic::{Actor, ActorKind, Traffic, TrafficConfig};
pub use vec_env::VecEnv;
pub use vehicle::{wrap_angle, Action, Vehicle, VehicleParams};
pub use weather::{Lighting, Weather};
