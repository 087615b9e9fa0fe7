//! The driving simulator: determinism, vehicle dynamics, collisions and their severity,
//! off-lane / off-road degrees, the rendered labels of a constructed scene, reward and
//! termination on hand-made cases, the vectorised environment and the synthetic dataset.

use rwt::data::{Dataset, Split, Synthetic, SyntheticConfig};
use rwt::sim::*;

fn empty_env(town: u64) -> DrivingEnv {
    let mut cfg = EnvConfig::new(town);
    cfg.traffic = TrafficConfig::empty();
    let mut env = DrivingEnv::new(cfg).unwrap();
    env.reset(0).unwrap();
    far_goal(&mut env);
    env
}

/// Puts the goal on the westbound lane of the long eastbound road: at least a block away.
fn far_goal(env: &mut DrivingEnv) {
    let (east, mid) = east_lane(env);
    let west = env.town().lanes().iter().position(|l| l.from == east.to && l.to == east.from).unwrap();
    let _ = mid;
    env.set_goal(west, 1.0).unwrap();
}

/// A long eastbound lane of `env`'s town and its middle point.
fn east_lane(env: &DrivingEnv) -> (Lane, V2) {
    let lane = *env.town().lanes().iter().find(|l| l.dir.x > 0.99 && l.length() > 40.0).expect("an eastbound lane");
    (lane, lane.at(lane.length() * 0.5))
}

/// The index and shape of an eastbound lane of the training town at least 45 m long.
fn lane_of_45_m() -> (usize, Lane) {
    empty_env(TRAINING_TOWN)
        .town()
        .lanes()
        .iter()
        .enumerate()
        .find(|(_, l)| l.dir.x > 0.99 && l.length() > 45.0)
        .map(|(k, l)| (k, *l))
        .expect("a 45 m eastbound lane")
}

/// Throttle that holds speed `v` (m/s) against the vehicle model's resistance.
fn hold(env: &DrivingEnv, v: f32) -> Action {
    Action::new(0.0, (0.15 + 0.02 * v) / env.ego().params.max_accel, 0.0)
}

#[test]
fn same_seed_same_episode_other_seed_other_episode() {
    let cfg = EnvConfig::new(TRAINING_TOWN);
    let run = |seed: u64| {
        let mut env = DrivingEnv::new(cfg.clone()).unwrap();
        let first = env.reset(seed).unwrap();
        let driver = Autopilot::default();
        let mut rewards = vec![];
        let mut last = first.frame.clone();
        for _ in 0..30 {
            let t = env.step(driver.act(&env)).unwrap();
            rewards.push(t.reward);
            let done = t.done();
            last = t.observation.frame;
            if done {
                break;
            }
        }
        (first.frame, last, rewards, env.ego().position)
    };
    let (a0, a1, ra, pa) = run(11);
    let (b0, b1, rb, pb) = run(11);
    assert_eq!(a0.rgb, b0.rgb);
    assert_eq!(a1.rgb, b1.rgb);
    assert_eq!(a1.labels, b1.labels);
    assert_eq!(a1.depth, b1.depth);
    assert_eq!(ra, rb);
    assert_eq!(pa, pb);
    let (c0, _, _, _) = run(12);
    assert_ne!(a0.rgb, c0.rgb);
}

#[test]
fn braking_stops_the_car_and_it_stays_stopped() {
    let mut env = empty_env(TRAINING_TOWN);
    let (lane, mid) = east_lane(&env);
    env.place_ego(lane.at(8.0), 0.0, 0.0);
    for _ in 0..25 {
        env.step(Action::new(0.0, 1.0, 0.0)).unwrap();
    }
    let cap = 25.0 / 3.6;
    assert!((env.ego().speed - cap).abs() < 1e-4, "speed {} at full throttle", env.ego().speed);
    let mut steps = 0;
    while env.ego().speed > 0.0 {
        env.step(Action::new(0.0, 0.0, 1.0)).unwrap();
        steps += 1;
        assert!(steps <= 10, "still moving after 1 s of full braking");
    }
    let rest = env.ego().position;
    for _ in 0..5 {
        let t = env.step(Action::new(0.0, 0.0, 1.0)).unwrap();
        assert_eq!(t.observation.measurements.speed, 0.0);
    }
    assert_eq!(env.ego().position, rest);
    assert!(rest.x < mid.x + lane.length(), "stayed on the lane");
}

#[test]
fn collisions_with_road_users_have_the_table_severity_and_end_the_episode() {
    let cases = [
        (ActorKind::Pedestrian, 20.0, Obstacle::Pedestrian, Severity::S3),
        (ActorKind::Pedestrian, 5.0, Obstacle::Pedestrian, Severity::S1),
        (ActorKind::Cyclist, 12.0, Obstacle::Cyclist, Severity::S2),
        (ActorKind::ParkedCar, 12.0, Obstacle::Vehicle, Severity::S1),
        (ActorKind::Car, 20.0, Obstacle::Vehicle, Severity::S2),
        (ActorKind::Barrier, 5.0, Obstacle::RigidStatic, Severity::S0),
    ];
    for (kind, kmh, what, severity) in cases {
        let mut env = empty_env(TRAINING_TOWN);
        let (_, mid) = east_lane(&env);
        let (len, _, _) = kind.size();
        // The front bumper just short of the road user: it is hit during the next step.
        let gap = (kmh / 3.6 * 0.1 * 0.5f32).min(0.2);
        let ego_x = mid.x - len * 0.5 - 2.25 - gap;
        env.traffic_mut().actors = vec![Actor::standing(kind, mid, 0.0)];
        env.place_ego(V2::new(ego_x, mid.y), 0.0, kmh / 3.6);
        assert!(env.collision().is_none(), "{kind:?}: no contact before the step");
        let t = env.step(hold(&env, kmh / 3.6)).unwrap();
        let (hit, speed, s) = t.info.collision.unwrap_or_else(|| panic!("{kind:?} at {kmh} km/h not detected"));
        assert_eq!((hit, s), (what, severity), "{kind:?} at {kmh} km/h");
        assert!((speed - kmh).abs() < 1e-3, "impact speed {speed}");
        // Centred in its lane: ol = or = 0, so r = 1 − 10 c.
        assert_eq!((t.info.off_lane, t.info.off_road), (0.0, 0.0));
        assert_eq!(t.reward, 1.0 - 10.0 * severity.cost());
        assert!(t.terminated && !t.truncated);
        assert_eq!(t.info.termination, Some(Termination::Crash));
        assert_eq!(t.observation.measurements.collision_damage, severity.cost());
        let log = t.info.episode.expect("the last step carries the episode log");
        assert_eq!(log.infractions.len(), 1);
        assert_eq!(log.infractions[0].kind, InfractionKind::collision(what));
        // Driven into head-on: straight ahead, at the ego car's own speed, the other standing.
        let impact = log.infractions[0].impact.expect("a collision logs its impact");
        assert_eq!(impact.side(), ImpactSide::Front, "{kind:?}: {impact:?}");
        let ahead = mid.x - env.ego().position.x;
        assert!((impact.ahead_m - ahead).abs() < 1e-3 && impact.right_m.abs() < 1e-3, "{impact:?}");
        assert!((impact.ego_kmh - env.ego().speed * 3.6).abs() < 1e-3 && impact.other_kmh == 0.0, "{impact:?}");
        assert!(env.step(Action::default()).unwrap_err().to_string().contains("reset"));
    }
}

#[test]
fn a_collision_logs_which_side_the_other_party_was_on() {
    // A standing ego car facing east, a parked car (4.5 m × 1.9 m) touching it: 3 m ahead
    // (its rear overlaps the ego's front), 2 m to the right, 3 m behind, 2 m to the left
    // (y up, so the right is −y). Closed form: ahead = dx, right = −dy.
    for (dx, dy, side) in [
        (3.0, 0.0, ImpactSide::Front),
        (0.5, -1.5, ImpactSide::Side),
        (-3.0, 0.0, ImpactSide::Rear),
        (0.0, 1.5, ImpactSide::Side),
    ] {
        let mut env = empty_env(TRAINING_TOWN);
        let (_, mid) = east_lane(&env);
        env.place_ego(mid, 0.0, 0.0);
        env.traffic_mut().actors = vec![Actor::standing(ActorKind::ParkedCar, mid + V2::new(dx, dy), 0.0)];
        let t = env.step(Action::new(0.0, 0.0, 1.0)).unwrap();
        let log = t.info.episode.expect("the collision ends the episode");
        let impact = log.infractions[0].impact.expect("a collision logs its impact");
        assert_eq!(impact.side(), side, "at ({dx}, {dy}): {impact:?}");
        assert!((impact.ahead_m - dx).abs() < 1e-4 && (impact.right_m + dy).abs() < 1e-4, "{impact:?}");
        assert_eq!((impact.ego_kmh, impact.other_kmh), (0.0, 0.0));
    }
}

#[test]
fn collisions_with_town_objects_by_kind() {
    let cases = [
        (PropKind::Building, 20.0, Obstacle::RigidStatic, Severity::S2),
        (PropKind::Building, 5.0, Obstacle::RigidStatic, Severity::S0),
        (PropKind::Pole, 12.0, Obstacle::RigidStatic, Severity::S1),
        (PropKind::Wall, 20.0, Obstacle::RigidStatic, Severity::S2),
        (PropKind::Fence, 20.0, Obstacle::LightStatic, Severity::S1),
        (PropKind::Trunk, 12.0, Obstacle::RigidStatic, Severity::S1),
    ];
    for (kind, kmh, what, severity) in cases {
        let mut env = empty_env(TRAINING_TOWN);
        let town = std::sync::Arc::clone(env.town());
        let mut found = None;
        'search: for p in town.props().iter().filter(|p| p.kind == kind) {
            let fp = p.footprint;
            let f = V2::from_angle(fp.yaw);
            // Drive at the prop's face across its short axis, from either side.
            for (dir, reach) in
                [(f.right(), fp.half_width), (-f.right(), fp.half_width), (f, fp.half_length), (-f, fp.half_length)]
            {
                let start = fp.center - dir * (reach + 2.25 + (kmh / 3.6 * 0.1 * 0.5f32).min(0.2));
                env.place_ego(start, dir.angle(), kmh / 3.6);
                if env.collision().is_some() || start.x < 5.0 || start.y < 5.0 {
                    continue;
                }
                let t = env.step(hold(&env, kmh / 3.6)).unwrap();
                found = Some(t.info.collision);
                break 'search;
            }
        }
        let hit = found
            .unwrap_or_else(|| panic!("no free approach to a {kind:?}"))
            .unwrap_or_else(|| panic!("{kind:?} not hit"));
        assert_eq!((hit.0, hit.2), (what, severity), "{kind:?} at {kmh} km/h");
    }
}

#[test]
fn off_lane_and_off_road_degrees_of_constructed_poses() {
    let mut env = empty_env(TRAINING_TOWN);
    let town = std::sync::Arc::clone(env.town());
    let (_, mid) = east_lane(&env);
    let w = town.road_half_width();
    let centre_line = mid.y + w * 0.5; // eastbound lane is south of the centre line
    let body = |y: f32, yaw: f32| Footprint { center: V2::new(mid.x, y), yaw, half_length: 2.25, half_width: 0.95 };
    assert_eq!(lane_and_road_degrees(&town, &body(mid.y, 0.0)), (0.0, 0.0));
    // In the westbound lane, heading east: entirely off-lane. Heading west there: fine.
    assert_eq!(lane_and_road_degrees(&town, &body(centre_line + w * 0.5, 0.0)), (1.0, 0.0));
    assert_eq!(lane_and_road_degrees(&town, &body(centre_line + w * 0.5, std::f32::consts::PI)), (0.0, 0.0));
    // Straddling the centre line: half in the other lane.
    assert_eq!(lane_and_road_degrees(&town, &body(centre_line, 0.0)), (0.5, 0.0));
    // Centred on the road's right edge: half off the road.
    assert_eq!(lane_and_road_degrees(&town, &body(centre_line - w, 0.0)), (0.0, 0.5));

    // The same through the environment: reward and termination.
    env.place_ego(V2::new(mid.x, centre_line), 0.0, 0.0);
    let t = env.step(Action::default()).unwrap();
    assert_eq!((t.info.off_lane, t.reward, t.terminated), (0.5, 0.5, false));
    assert_eq!(t.info.infractions[0].kind, InfractionKind::OffLane);
    env.place_ego(V2::new(mid.x, centre_line + w * 0.5), 0.0, 0.0);
    let t = env.step(Action::default()).unwrap();
    assert_eq!((t.reward, t.info.termination), (0.0, Some(Termination::OffLane)));
    // One excursion, one infraction.
    assert_eq!(t.info.episode.unwrap().infractions.iter().filter(|i| i.kind == InfractionKind::OffLane).count(), 1);

    env.reset(0).unwrap();
    far_goal(&mut env);
    env.place_ego(V2::new(mid.x, centre_line - w), 0.0, 0.0);
    let t = env.step(Action::default()).unwrap();
    assert_eq!((t.reward, t.info.termination), (0.5, Some(Termination::OffRoad)));
    assert_eq!(t.info.infractions[0].kind, InfractionKind::OffRoad);
}

#[test]
fn rendered_labels_and_depth_of_a_constructed_scene() {
    let mut env = empty_env(TRAINING_TOWN);
    let (_, mid) = east_lane(&env);
    let start = V2::new(mid.x - 10.0, mid.y);
    env.traffic_mut().actors = vec![Actor::standing(ActorKind::Pedestrian, mid, 0.0)];
    env.place_ego(start, 0.0, 0.0);
    let obs = env.observe();
    let cam = env.config().camera.clone();
    let (w, h) = (cam.width as f32, cam.height as f32);
    let f = cam.focal();
    let pitch = cam.pitch_degrees.to_radians();
    // The pedestrian's chest, 1.2 m high, 10 m ahead of the car's centre: project by hand.
    let ahead = 10.0 - cam.mount_forward;
    let up = 1.2 - cam.mount_height;
    let zc = ahead * pitch.cos() + up * pitch.sin();
    let yc = -(-ahead * pitch.sin() + up * pitch.cos());
    let (u, v) = (w * 0.5, h * 0.5 + f * yc / zc);
    assert_eq!(obs.frame.labels.get_pixel(u as u32, v as u32).0[0], label::PERSON, "pixel ({u}, {v})");
    // The bottom row's centre: road, at the depth where the ray meets the ground.
    let row = cam.height - 1;
    let yn = (row as f32 + 0.5 - h * 0.5) / f;
    let t = cam.mount_height / (yn * pitch.cos() - pitch.sin());
    let i = (row * cam.width + cam.width / 2) as usize;
    assert_eq!(obs.frame.labels.get_pixel(cam.width / 2, row).0[0], label::ROAD);
    assert!((obs.frame.depth[i] - t).abs() < 1e-3, "depth {} vs {t}", obs.frame.depth[i]);
    // Straight up, above every building: sky, at the far depth.
    env.place_ego(start, 0.0, 0.0);
    let mut cfg = env.config().clone();
    cfg.camera.pitch_degrees = 55.0;
    let mut up_env = DrivingEnv::with_town(cfg, std::sync::Arc::clone(env.town())).unwrap();
    up_env.reset(0).unwrap();
    up_env.place_ego(start, 0.0, 0.0);
    let sky = up_env.observe();
    assert_eq!(sky.frame.labels.get_pixel(cam.width / 2, 0).0[0], label::SKY);
    assert_eq!(sky.frame.depth[(cam.width / 2) as usize], cam.far);
    // Every label is a Cityscapes train id.
    assert!(obs.frame.labels.pixels().all(|p| p.0[0] < 19));
}

#[test]
fn time_limit_truncates_and_the_goal_terminates() {
    let mut cfg = EnvConfig::new(TRAINING_TOWN);
    cfg.traffic = TrafficConfig::empty();
    cfg.max_steps = 5;
    let mut env = DrivingEnv::new(cfg).unwrap();
    env.reset(3).unwrap();
    let mut last = None;
    for k in 1..=5 {
        let t = env.step(Action::new(0.0, 0.0, 1.0)).unwrap();
        assert_eq!(t.done(), k == 5);
        last = Some(t);
    }
    let t = last.unwrap();
    assert!(t.truncated && !t.terminated);
    let log = t.info.episode.unwrap();
    assert_eq!((log.steps, log.termination, log.distance_m), (5, Termination::TimeLimit, 0.0));

    env.reset(4).unwrap();
    let route = env.route().unwrap().clone();
    let pts = route.points();
    let (a, b) = (pts[pts.len() - 2], pts[pts.len() - 1]);
    env.place_ego(b - (b - a).normalized() * 2.0, (b - a).angle(), 0.0);
    let t = env.step(Action::default()).unwrap();
    assert_eq!(t.info.termination, Some(Termination::GoalReached));
    assert!(t.terminated && t.info.episode.unwrap().success());
}

/// A car held on the brake ends as `Blocked` after exactly `blocked_steps` steps; one that
/// creeps on (moving more than `BLOCKED_RADIUS_M` now and then) restarts the count and runs to
/// the step limit; zero steps is a named error.
#[test]
fn standing_still_is_blocked() {
    let mut cfg = EnvConfig::new(TRAINING_TOWN);
    cfg.traffic = TrafficConfig::empty();
    cfg.max_steps = 60;
    cfg.blocked_steps = Some(20);
    let mut env = DrivingEnv::new(cfg.clone()).unwrap();
    env.reset(3).unwrap();
    let mut ended = None;
    for k in 1..=60 {
        let t = env.step(Action::new(0.0, 0.0, 1.0)).unwrap();
        if t.done() {
            assert!(t.terminated && !t.truncated);
            ended = Some((k, t.info.termination));
            break;
        }
    }
    assert_eq!(ended, Some((20, Some(Termination::Blocked))));

    // Moving on: placed by hand 1.5 m forward and back every 10 steps.
    env.reset(3).unwrap();
    let (start, yaw) = (env.ego().position, env.ego().yaw);
    let mut last = None;
    for k in 1..=60 {
        if k % 10 == 0 {
            let ahead = if k % 20 == 0 { 0.0 } else { 1.5 };
            env.place_ego(start + rwt::sim::V2::from_angle(yaw) * ahead, yaw, 0.0);
        }
        let t = env.step(Action::new(0.0, 0.0, 1.0)).unwrap();
        last = Some(t.info.termination);
        if t.done() {
            assert_eq!(k, 60);
        }
    }
    assert_eq!(last, Some(Some(Termination::TimeLimit)));
    const { assert!(rwt::sim::BLOCKED_RADIUS_M < 1.5) };

    cfg.blocked_steps = Some(0);
    let err = DrivingEnv::new(cfg).err().unwrap().to_string();
    assert!(err.contains("blocked_steps"), "{err}");
}

#[test]
fn autopilot_reaches_goals_in_an_empty_town() {
    let mut env = empty_env(TRAINING_TOWN);
    let driver = Autopilot::default();
    let mut logs = vec![];
    for seed in 0..6 {
        env.reset(seed).unwrap();
        loop {
            let t = env.step(driver.act(&env)).unwrap();
            if let Some(log) = t.info.episode {
                logs.push(log);
                break;
            }
        }
    }
    let m = DrivingMetrics::from_episodes(&logs);
    assert!(m.success_rate >= 5.0 / 6.0, "{logs:#?}");
    assert!(m.km_per_hour > 10.0 && m.km_per_hour <= 25.0, "{m:?}");
    assert_eq!(m.counts.iter().map(|c| c.1).sum::<usize>(), 0, "{m:?}");
}

#[test]
fn vectorised_environments_match_single_ones() {
    let mut cfg = EnvConfig::new(TRAINING_TOWN);
    cfg.max_steps = 8;
    let mut vec = VecEnv::driving(&cfg, 3).unwrap();
    let obs = vec.reset(20).unwrap();
    let mut single = DrivingEnv::new(cfg.clone()).unwrap();
    let first = single.reset(21).unwrap();
    assert_eq!(obs[1].frame.rgb, first.frame.rgb);
    let actions = [Action::new(0.0, 0.5, 0.0); 3];
    let mut t = vec![];
    for _ in 0..8 {
        t = vec.step(&actions).unwrap();
    }
    // All three hit the step limit at step 8 and restarted with seeds 23, 24, 25.
    assert!(t.iter().all(|t| t.truncated && t.info.episode.is_some()));
    single.reset(24).unwrap();
    assert_eq!(t[1].observation.frame.rgb, single.observe().frame.rgb);
    assert!(vec.step(&actions[..2]).unwrap_err().to_string().contains("actions"));
}

#[test]
fn bad_input_is_an_error_naming_the_value() {
    let mut env = empty_env(TRAINING_TOWN);
    assert!(env.step(Action::new(0.0, 2.0, 0.0)).unwrap_err().to_string().contains("throttle"));
    assert!(env.step(Action::new(f32::NAN, 0.0, 0.0)).unwrap_err().to_string().contains("steer"));
    let mut cfg = EnvConfig::new(1);
    cfg.dt = 0.0;
    assert!(DrivingEnv::new(cfg).unwrap_err().to_string().contains("dt"));
    let cfg = EnvConfig::new(1).with_camera(CameraConfig::agent().with_size(4, 96));
    assert!(DrivingEnv::new(cfg).unwrap_err().to_string().contains("camera size"));
    let mut cfg = EnvConfig::new(1);
    cfg.town.junctions_x = 1;
    assert!(DrivingEnv::new(cfg).unwrap_err().to_string().contains("junctions"));
    let mut cfg = EnvConfig::new(1);
    cfg.town.block = 30.0;
    assert!(DrivingEnv::new(cfg).unwrap_err().to_string().contains("block"));
    // The smallest valid town still spawns every kind of road user.
    let mut cfg = EnvConfig::new(1);
    cfg.town.block = 2.0 * (cfg.town.lane_width + cfg.town.sidewalk) + 30.0;
    let mut small = DrivingEnv::new(cfg).unwrap();
    small.reset(0).unwrap();
    assert!(small.traffic().actors.len() > 50);
    let bad = SyntheticConfig { test_towns: vec![TRAINING_TOWN], ..SyntheticConfig::default() };
    assert!(Synthetic::new(bad, Split::Test).unwrap_err().to_string().contains("test_towns"));
    assert!("snow".parse::<Weather>().unwrap_err().to_string().contains("snow"));
}

#[test]
fn synthetic_dataset_is_deterministic_and_split_by_town() {
    let config = SyntheticConfig { frames_per_town: 3, width: 96, height: 72, ..SyntheticConfig::default() };
    let train = Synthetic::new(config.clone(), Split::Train).unwrap();
    let test = Synthetic::new(config.clone(), Split::Test).unwrap();
    assert_eq!(train.len(), 9);
    assert!(train.town_seeds().iter().all(|t| !test.town_seeds().contains(t)));
    let a = train.get(4).unwrap();
    let b = train.get(4).unwrap();
    assert_eq!((a.image.clone(), a.label.clone()), (b.image, b.label));
    assert_eq!(a.image.dimensions(), (96, 72));
    assert!(a.label.pixels().all(|p| p.0[0] < 19));
    assert_ne!(train.get(0).unwrap().image, test.get(0).unwrap().image);
    assert!(train.get(9).unwrap_err().to_string().contains("index"));
    // The frames show the classes a segmenter must learn.
    let mut seen = [false; 19];
    for i in 0..train.len() {
        for p in train.get(i).unwrap().label.pixels() {
            seen[p.0[0] as usize] = true;
        }
    }
    for c in [label::ROAD, label::SIDEWALK, label::BUILDING, label::SKY, label::POLE] {
        assert!(seen[c as usize], "class {c} never rendered");
    }
}

/// The route ahead in the car's frame, against the closed form: on a straight eastbound lane,
/// facing east on the lane's centre line, the route 8 and 20 m ahead is straight ahead
/// (`[8, 0, 20, 0]`); facing north at the same spot it is to the right (`[0, −8, 0, −20]`);
/// the measurement vector with the route appends them divided by 20 m.
#[test]
fn the_route_ahead_is_in_the_cars_frame() {
    let mut env = empty_env(TRAINING_TOWN);
    let (lane, _) = east_lane(&env);
    assert!(lane.length() > 8.0 + ROUTE_LOOKAHEAD[1] + 5.0);
    let close = |a: [f32; 4], b: [f32; 4]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 0.05);
    env.place_ego(lane.at(8.0), 0.0, 0.0);
    let m = env.observe().measurements;
    assert!(close(m.route_ahead, [8.0, 0.0, 20.0, 0.0]), "{:?}", m.route_ahead);
    env.place_ego(lane.at(8.0), std::f32::consts::FRAC_PI_2, 0.0);
    let m = env.observe().measurements;
    assert!(close(m.route_ahead, [0.0, -8.0, 0.0, -20.0]), "{:?}", m.route_ahead);
    let v = m.vector_with_route();
    assert_eq!(v[..Measurements::LEN], m.vector());
    assert!(close([v[7], v[8], v[9], v[10]], [0.0, -0.4, 0.0, -1.0]), "{v:?}");
}

/// `free_ahead` in closed form: a parked car `gap` metres beyond the ego car's front in its
/// lane (bumper to bumper) is read, within the probes' ½ m, along the route and along the
/// heading; with the car turned 30° off the lane the route's corridor still meets it and the
/// heading's reads as with no car at all; an empty lane is free up to the reach. The state's
/// vector appends both divided by the reach.
#[test]
fn the_free_distance_ahead_is_the_gap_to_the_first_obstacle() {
    let (k, lane) = lane_of_45_m();
    let (at, parked_at) = (5.0, 17.0);
    let free = |yaw: f32, parked: bool| {
        let mut env = empty_env(TRAINING_TOWN);
        env.place_ego(lane.at(at), yaw, 0.0);
        env.set_goal(k, lane.length() - 1.0).unwrap();
        if parked {
            env.traffic_mut().actors.push(Actor::standing(ActorKind::ParkedCar, lane.at(parked_at), 0.0));
        }
        let m = env.observe().measurements;
        (m.free_ahead, m)
    };
    let ego_len = empty_env(TRAINING_TOWN).ego().params.length;
    let gap = parked_at - at - ActorKind::ParkedCar.size().0 * 0.5 - ego_len * 0.5;
    assert!(gap > 5.0 && gap < FREE_AHEAD_REACH_M - 2.0, "{gap}");
    let ([route, heading], m) = free(0.0, true);
    assert!((route - gap).abs() <= 0.55 && (heading - gap).abs() <= 0.55, "{route} {heading}, gap {gap}");
    let v = m.vector_with(true, true);
    assert_eq!(v.len(), Measurements::len_with(true, true));
    assert_eq!(v[..Measurements::LEN_WITH_ROUTE], m.vector_with_route());
    assert_eq!(v[Measurements::LEN_WITH_ROUTE..], [route / FREE_AHEAD_REACH_M, heading / FREE_AHEAD_REACH_M]);
    assert_eq!(m.vector_with(false, true)[..Measurements::LEN], m.vector());
    let turn = 30f32.to_radians();
    let ([route_turned, heading_turned], _) = free(turn, true);
    let ([_, heading_no_car], _) = free(turn, false);
    assert!((route_turned - gap).abs() <= 0.55, "{route_turned}, gap {gap}");
    assert_eq!(heading_turned, heading_no_car);
    assert!(heading_turned > gap + 1.0, "{heading_turned}");
    let ([route_empty, _], _) = free(0.0, false);
    assert_eq!(route_empty, FREE_AHEAD_REACH_M);
}

#[test]
fn the_autopilot_passes_a_parked_car_only_when_asked_to() {
    // A parked car 13 m ahead in a straight lane, nothing else in town: the default
    // Autopilot stops behind it; with `pass_static` it drives round it in the lane to its left
    // (right-hand traffic), without touching it, and back onto its route.
    let (k, lane) = lane_of_45_m();
    let parked_at = 15.0;
    let run = |pass_static: bool| {
        let mut env = empty_env(TRAINING_TOWN);
        env.place_ego(lane.at(2.0), 0.0, 0.0);
        env.set_goal(k, lane.length() - 1.0).unwrap();
        env.traffic_mut().actors.push(Actor::standing(ActorKind::ParkedCar, lane.at(parked_at), 0.0));
        let driver = Autopilot { pass_static, ..Autopilot::default() };
        let (mut x_max, mut collided, mut lateral_at_end) = (0.0f32, false, f32::NAN);
        for _ in 0..400 {
            let t = env.step(driver.act(&env)).unwrap();
            collided |= t.info.collision.is_some();
            x_max = x_max.max(env.ego().position.x - lane.start.x);
            lateral_at_end = (env.ego().position.y - lane.start.y).abs();
            if t.done() {
                break;
            }
        }
        (x_max, collided, lateral_at_end)
    };
    let half_car = ActorKind::ParkedCar.size().0 * 0.5;
    let (x_stop, collided, _) = run(false);
    assert!(!collided && x_stop < parked_at - half_car, "braking driver reached {x_stop} m (car at {parked_at} m)");
    let (x_pass, collided, lateral) = run(true);
    assert!(!collided, "the passing driver touched something");
    assert!(x_pass > parked_at + 20.0, "the passing driver reached only {x_pass} m (car at {parked_at} m)");
    assert!(lateral < 0.5, "{lateral} m off its lane's centre line at the end");
}

/// Brake recall (`rl::BrakeRecall`) on hand-placed scenes: in an empty lane the state is clear;
/// a pedestrian, a parked car or a barrier standing on the lane 4 m beyond the ego car's front
/// (inside the Autopilot's stopping reach at 5 m/s: 2.6 m + 4 m margin + half the car) makes it
/// a person, vehicle or static state (`Autopilot::braking_for`), the same one 30 m ahead does
/// not; a brake of 0.5 counts as braked, 0.49 does not; a car under 1 km/h is not counted.
#[test]
fn brake_recall_counts_each_state_under_what_the_autopilot_brakes_for() {
    use rwt::rl::{BrakeCount, BrakeRecall};
    let (k, lane) = lane_of_45_m();
    let auto = Autopilot::default();
    let scene = |what: Option<(ActorKind, f32)>, speed: f32| {
        let mut env = empty_env(TRAINING_TOWN);
        env.place_ego(lane.at(5.0), 0.0, speed);
        env.set_goal(k, lane.length() - 1.0).unwrap();
        if let Some((kind, gap)) = what {
            let at = 5.0 + env.ego().params.length * 0.5 + gap + kind.size().0 * 0.5;
            env.traffic_mut().actors.push(Actor::standing(kind, lane.at(at), 0.0));
        }
        env
    };
    let (full, light) = (Action::new(0.0, 0.0, 0.5), Action::new(0.0, 0.0, 0.49));
    let mut r = BrakeRecall::default();
    let clear = scene(None, 5.0);
    assert_eq!(auto.braking_for(&clear), None);
    r.observe(&auto, &clear, &full);
    r.observe(&auto, &clear, &Action::new(0.0, 0.6, 0.0));
    let far = scene(Some((ActorKind::Pedestrian, 30.0)), 5.0);
    assert_eq!(auto.braking_for(&far), None);
    r.observe(&auto, &far, &light);
    // Clear: a full brake, throttle 0.6 and a 0.49 brake (gentle).
    assert_eq!(r.clear, BrakeCount { states: 3, braked: 1, gentle: 1, throttled: 1 });
    assert_eq!(r.clear.coasted(), 0);
    for (kind, what) in [
        (ActorKind::Pedestrian, Obstacle::Pedestrian),
        (ActorKind::ParkedCar, Obstacle::Vehicle),
        (ActorKind::Barrier, Obstacle::RigidStatic),
    ] {
        let env = scene(Some((kind, 4.0)), 5.0);
        assert_eq!(auto.braking_for(&env), Some(what), "{kind:?}");
        // The Autopilot itself brakes fully there.
        assert!(auto.act(&env).brake >= rwt::rl::FULL_BRAKE, "{kind:?}");
        r.observe(&auto, &env, &full);
        r.observe(&auto, &env, &light);
        r.observe(&auto, &env, &full);
        // Standing: not counted.
        r.observe(&auto, &scene(Some((kind, 4.0)), 0.2), &full);
    }
    let two_of_three = BrakeCount { states: 3, braked: 2, gentle: 1, throttled: 0 };
    assert_eq!((r.person, r.vehicle, r.static_obstacle), (two_of_three, two_of_three, two_of_three));
    assert_eq!(r.person.fraction(), Some(2.0 / 3.0));
    let mut twice = r;
    twice.merge(&r);
    assert_eq!(twice.vehicle, BrakeCount { states: 6, braked: 4, gentle: 2, throttled: 0 });
    assert_eq!(BrakeCount::default().fraction(), None);
    let table = BrakeRecall::table(&[("d".into(), twice)]).to_markdown();
    assert!(table.contains("67 % of 6") && table.contains("33 % of 6"), "{table}");
    // What the driver did instead: person 4 full and 2 gentle of 6; clear 2 full, 2 gentle,
    // 2 throttle of 6; a coasting action (no brake, no throttle) is counted as neither.
    let mut coasting = BrakeRecall::default();
    coasting.observe(&auto, &clear, &Action::new(0.3, 0.0, 0.0));
    assert_eq!((coasting.clear.states, coasting.clear.coasted()), (1, 1));
    let responses = BrakeRecall::response_table(&[("d".into(), twice), ("c".into(), coasting)]).to_markdown();
    assert!(responses.contains("| d | 67 / 33 / 0 / 0 |"), "{responses}");
    assert!(responses.contains("| 33 / 33 / 0 / 33 |"), "{responses}");
    assert!(responses.contains("| – | – | – | 0 / 0 / 100 / 0 |"), "{responses}");
    // Records written before the gentle and throttle counts read them as 0.
    let old: BrakeCount = serde_json::from_str(r#"{"states": 3, "braked": 1}"#).unwrap();
    assert_eq!(old, BrakeCount { states: 3, braked: 1, gentle: 0, throttled: 0 });
}
