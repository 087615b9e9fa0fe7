# Training town: collisions with cars by where the car was (the `impact` each collision logs),
# pooled over training and benchmark seeds; km between the cars the ego drove into.
#   python3 impacts.py impacts-baselines-std.json benchmark.json > impacts.md
import json, sys, statistics as st
rows=[]
for f in sys.argv[1:]: rows += json.load(open(f))
def side(i):
    im=i.get('impact')
    if im is None: return 'none'
    if im['ego_kmh']<1: return 'standing'
    a,r=im['ahead_m'],abs(im['right_m'])
    return 'front' if a>r else ('rear' if -a>r else 'side')
import collections
agg=collections.OrderedDict()
for r in rows:
    if r['condition']!='training town': continue
    k=r['driver'].split(' (training seed')[0]
    for s in range(3): k=k.replace(f'-seed{s}','')
    if 'sampled' in r['driver']: k+=', sampled'
    a=agg.setdefault(k,{'km':0,'n':collections.Counter(),'dp':[],'off':0,'offl':0})
    a['km']+=r['pooled']['km']; a['dp']+=[m['drive_percent'] for m in r['per_seed']]
    for e in r['episodes']:
        for i in e['infractions']:
            if i['kind']=='CollisionVehicle': a['n'][side(i)]+=1
            if i['kind']=='OffRoad': a['off']+=1
            if i['kind']=='OffLane': a['offl']+=1
print('| driver | km | Drive % | cars | driven into | side | behind | standing | km / car driven into | km / off-road | km / off-lane |')
print('|---|' + '---:|' * 10)
for k,a in agg.items():
    n=a['n']; tot=sum(n.values()); f=n['front']
    dp=a['dp']; sd=st.stdev(dp) if len(dp)>1 else 0
    fmt=lambda c: f"{a['km']/c:.2f}" if c else f"> {a['km']:.2f}"
    print(f"| {k} | {a['km']:.2f} | {st.mean(dp):.1f} ± {sd:.1f} | {tot} | {f} | {n['side']} | {n['rear']} | {n['standing']} | {fmt(f)} | {fmt(a['off'])} | {fmt(a['offl'])} |")
