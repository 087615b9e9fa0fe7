# The floor over 10,000 training-town episodes (benchmark seeds 0–999, floor-1000.json.gz,
# written by `cargo run --release --example floor -- drive
# ../drive-labels-dagger-aggregate/seed-0/config.toml 1000 floor-1000.json.gz`, 13 minutes;
# its first 300 episodes are benchmark.json's floor, episode for episode) beside the Autopilot
# and every agent recipe of sections 17–21, each pooled over its three training seeds from the
# one record that holds its most episodes, so that no episode counts twice. floor.py's
# functions, without the crate; the crate's table (rl::pool_by_recipe over all the records,
# rl::floor_table) must equal it cell for cell (tests/drive.rs).
#   python3 floor-1000.py > floor-1000.md      (from notebooks/results/drive-floor)
from floor import FLOOR, load, long_floor_drivers, table
d300 = load(['benchmark.json'])
brakes = load(['../drive-brakes/benchmark.json'])
moving = load(['../drive-labels-dagger-aggregate-moving-brake/brakes-100.json'])
free = load(['../drive-labels-dagger-aggregate-brake-free/brakes-100.json'])
latent_free = load(['../drive-enet-dagger-aggregate-brake-free/brakes-100.json'])
drivers = long_floor_drivers(d300) + [
    ('latent agent, DAgger aggregate (section 17)', d300, 'agent: drive-enet-dagger-aggregate'),
    ('latent agent, brakes 4× and free distance ahead (section 21)', latent_free, 'agent: drive-enet-dagger-aggregate-brake-free-seed'),
    ('labels agent, DAgger aggregate (section 17)', d300, 'agent: drive-labels-dagger-aggregate-seed'),
    ('labels agent, brakes 4× (section 19)', brakes, 'agent: drive-labels-dagger-aggregate-brake-seed'),
    ('labels agent, brakes 4× and free distance ahead (section 21)', free, 'agent: drive-labels-dagger-aggregate-brake-free-seed'),
    ('labels agent, moving brakes 16× (section 20)', moving, 'agent: drive-labels-dagger-aggregate-moving-brake-seed'),
    ('labels agent, 20 imitation segments (section 18)', d300, 'agent: drive-labels-dagger-long'),
]
print(table(drivers, FLOOR))
