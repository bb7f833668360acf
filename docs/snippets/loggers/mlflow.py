import warnings

from mlflow.tracking import MlflowClient

from minifastai import MLflowCallback

warnings.filterwarnings("ignore", message=".*noload.*")  # SQLAlchemy's deprecation notice from MLflow's store
store = "sqlite:///mlflow.db"  # a local file: no server
cb = MLflowCallback(store, experiment_name="digits", run_name="fine_tune")
learn = make_learner()
learn.fine_tune(2, cbs=cb)

client = MlflowClient(store)
run = client.get_run(cb.run_id)
print(run.info.run_name, run.info.status)
for key in ("n_epoch", "fit1/n_epoch", "one_cycle.lr_max", "fit1/one_cycle.lr_max", "trainable_groups",
            "fit1/trainable_groups", "batches_per_epoch"):
    print(f"  {key}: {run.data.params[key]}")
for name in learn.group_names:
    h = client.get_metric_history(cb.run_id, f"lr/{name}")
    print(f"lr/{name:7s} {len(h)} steps, peak {max(m.value for m in h):.2e}")
print("artifacts:", [a.path for a in client.list_artifacts(cb.run_id)])
