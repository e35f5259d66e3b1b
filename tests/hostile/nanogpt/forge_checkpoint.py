# threat: forges the result file: overwrites the harness's first checkpoint with other weights
# block: optimizer
# expect: failed error ~ torch.save | invalid ~ checkpoint


def train(model, h):
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for step, (x, y) in enumerate(h.batches(8, 64)):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
    torch.save({k: v * 0 for k, v in model.state_dict().items()}, "nanogpt/ckpt_000.pt")
