# Notebook 09's section 22 table: the latent agents against the 10,000-episode floor, each
# recipe pooled over its training seeds and each seed on its own, from the one record per
# agent that holds its most episodes. floor.py's functions, without the crate; the crate's
# table (rl::with_recipes over all the records, rl::floor_table) must equal it cell for cell
# (tests/drive.rs).
#   python3 floor-latent.py > floor-latent.md      (from notebooks/results/drive-floor)
from floor import FLOOR, load, long_floor_drivers, table
d300 = load(['benchmark.json'])
free = load(['../drive-enet-dagger-aggregate-brake-free/brakes-300.json.gz'])
brake = load(['../drive-enet-dagger-aggregate-brake/brakes-200.json.gz'])
free_name = 'agent: drive-enet-dagger-aggregate-brake-free'
brake_name = 'agent: drive-enet-dagger-aggregate-brake'
drivers = long_floor_drivers(d300) + [
    ('latent agent, DAgger aggregate (section 17)', d300, 'agent: drive-enet-dagger-aggregate'),
    ('latent agent, brakes 4× (the paper\'s state)', brake, brake_name + '-seed'),
    ('latent agent, brakes 4× and free distance ahead', free, free_name + '-seed'),
]
drivers += [(f'{name}, seed {s}', rows, f'{prefix}-seed{s} ')
            for name, rows, prefix in [('brakes 4× and free', free, free_name), ('brakes 4×', brake, brake_name)]
            for s in (0, 1)]
print(table(drivers, FLOOR))
