"""The torch 1.13 numbers pasted into tests/ops/test_conv.cpp (pooling edge cases: ceil_mode,
count_include_pad, divisor_override, dilation, NaN; batch_norm running statistics over three steps).
Run: /usr/bin/python3 tests/parity/conv_torch_cases.py"""
import torch, torch.nn.functional as F
x = torch.arange(25, dtype=torch.float64).reshape(1,1,5,5)
def show(name, t): print(name, list(t.shape), [round(v, 10) for v in t.flatten().tolist()])
show("avg k2 s2 ceil pad0 incl", F.avg_pool2d(x, 2, 2, 0, ceil_mode=True, count_include_pad=True))
show("avg k3 s2 ceil pad1 incl", F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=True))
show("avg k3 s2 ceil pad1 excl", F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False))
show("avg k3 s2 pad1 div7", F.avg_pool2d(x, 3, 2, 1, ceil_mode=False, divisor_override=7))
show("avg k2 s3 ceil pad1 incl", F.avg_pool2d(x, 2, 3, 1, ceil_mode=True, count_include_pad=True))
v,i = F.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True); show("max k3 s2 p1 ceil", v); show("max idx", i)
v,i = F.max_pool2d(-x, 2, 2, 1, dilation=2, ceil_mode=True, return_indices=True); show("max -x k2 s2 p1 d2 ceil", v); show("max idx2", i)
show("adaptive 5->3", F.adaptive_avg_pool2d(x, (3,2)))
x7 = torch.arange(49., dtype=torch.float64).reshape(1,1,7,7)
show("avg 7 k2 s2 ceil pad1 excl", F.avg_pool2d(x7, 2, 2, 1, ceil_mode=True, count_include_pad=False))
y = torch.tensor([[[[1., float('nan'), 3.],[float('nan'), 2., 0.]]]])
v,i = F.max_pool2d(y, (2,3), return_indices=True); show("nan", v); show("nan idx", i)
# batch norm running stats
torch.manual_seed(0)
rm = torch.zeros(3); rv = torch.ones(3)
for step in range(3):
    xb = torch.arange(2*3*2*2, dtype=torch.float32).reshape(2,3,2,2) * (step+1) * 0.1 + step
    out = F.batch_norm(xb, rm, rv, None, None, True, 0.3, 1e-5)
show("rm", rm); show("rv", rv)
try:
    F.batch_norm(torch.zeros(0,3,2,2), torch.zeros(3), torch.ones(3), training=True)
    print("empty bn ok")
except Exception as e: print("empty bn", e)
