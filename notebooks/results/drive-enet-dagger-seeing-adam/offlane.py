import json, sys, collections
# For each driver's off-lane infractions in the training town: was the passing Autopilot
# off-lane within ±R m (metres driven) in the same episode?  (pass-like) or not (drift).
base = json.load(open(sys.argv[1]))
rows = base + sum((json.load(open(f)) for f in sys.argv[2:]), [])
R = 20.0
def key(e): return (e['town'], e['seed'], e['weather'])
teacher = {}
for r in base:
    if r['driver'].startswith('Autopilot passing'):
        for e in r['episodes']:
            teacher[key(e)] = [i['distance_m'] for i in e['infractions'] if i['kind'] in ('OffLane',)]
kinds=set()
for r in rows:
    if r['condition'] == 'new weather': continue
    near = far = 0; km = 0
    for e in r['episodes']:
        km += e['distance_m'] / 1000
        t = teacher.get(key(e), [])
        for i in e['infractions']:
            kinds.add(i['kind'])
            if i['kind'] != 'OffLane': continue
            if any(abs(i['distance_m'] - d) <= R for d in t): near += 1
            else: far += 1
    print(f"{r['driver'][:80]:80s} {r['condition']:14s} km {km:5.2f} off-lane near teacher's {near:3d}, elsewhere {far:3d}")
print(kinds, file=sys.stderr)
