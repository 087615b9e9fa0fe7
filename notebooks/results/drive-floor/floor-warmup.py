# Notebook 09's section 23 table: the paper's-state latent recipe (brakes 4×) with and without
# the learning-rate warm-up, against the 10,000-episode floor; each recipe pooled over its
# training seeds, the three seeds with seed 2 alone warmed up (0 and 1 without the warm-up, 2
# with it) pooled, and each warmed-up seed on its own. floor.py's functions, without the crate;
# the crate's table (rl::with_recipes, rl::floor_table) must equal it cell for cell
# (tests/drive.rs).
#   python3 floor-warmup.py > floor-warmup.md      (from notebooks/results/drive-floor)
from floor import FLOOR, load, long_floor_drivers, table
brake = load(['../drive-enet-dagger-aggregate-brake/brakes-200.json.gz'])
warm = load(['../drive-enet-dagger-aggregate-brake-warmup/brakes-200.json.gz'])
brake_name = 'agent: drive-enet-dagger-aggregate-brake'
warm_name = brake_name + '-warmup'
three = brake + [r for r in warm if r['driver'].startswith(warm_name + '-seed2 ')]
drivers = long_floor_drivers(load(['benchmark.json'])) + [
    ('brakes 4× (section 22; seeds 0, 1)', brake, brake_name + '-seed'),
    ('brakes 4×, warm-up (seeds 0, 1, 2)', warm, warm_name + '-seed'),
    ('brakes 4×, three seeds (0, 1; 2 warmed up)', three, brake_name),
    ('brakes 4×, warm-up, seed 0', warm, warm_name + '-seed0 '),
    ('brakes 4×, warm-up, seed 1', warm, warm_name + '-seed1 '),
    ('brakes 4×, warm-up, seed 2', warm, warm_name + '-seed2 '),
]
print(table(drivers, FLOOR))
