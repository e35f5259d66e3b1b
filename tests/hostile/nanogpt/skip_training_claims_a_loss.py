# threat: skips training while claiming a loss (prints it, names it, returns it)
# block: optimizer
# expect: valid reached_target=0 val_loss>2.5
val_loss = 0.01


def train(model, h):
    print("step 1000 val_loss 0.0100 train_time 0.01s", flush=True)
    return {"val_loss": 0.01}
