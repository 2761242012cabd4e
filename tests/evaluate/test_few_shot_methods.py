"""Few-shot classification methods (prototype, logistic) per episode and for the CLI, the
protocol's ``methods`` option, and SupCon fine-tuning on the support images.

The logistic method is checked against scikit-learn's LogisticRegression(C=1.0) on the same
L2-normalised support rows; the prototype method against an explicit loop; the protocol's
default output is unchanged; fine-tuning never touches the original encoder, lowers the loss on
the support set and is reproducible from its seed.
"""

from __future__ import annotations

import doctest

import pytest
import torch
import torch.nn.functional as F

import contrastkit.evaluate.finetune as finetune_module
import contrastkit.evaluate.protocols.few_shot as few_shot_module
from contrastkit.augment import views_for
from contrastkit.encoders import SmallCNN
from contrastkit.evaluate.finetune import supcon_finetune
from contrastkit.evaluate.protocols import FewShotProtocol, get_protocol
from contrastkit.evaluate.protocols.few_shot import (
    LOGISTIC_C,
    episode_predictions,
    few_shot_episodes,
    fit_predict_few_shot,
    prototype_accuracy,
)
from contrastkit.losses import sup_con


@pytest.fixture(scope="module")
def clusters():
    """8 classes × 20 rows in 16-D: noisy Gaussian clusters (not perfectly separable)."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(8, 16, generator=g)
    y = torch.arange(8).repeat_interleave(20)
    x = centres[y] + 0.9 * torch.randn(160, 16, generator=g)
    return x, y


def test_doctests():
    for module in (few_shot_module, finetune_module):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def _loop_prototype_predictions(x, episode) -> list[int]:
    z = F.normalize(x.double(), dim=1)
    n_way = int(episode.classes.numel())
    protos = []
    for c in range(n_way):
        rows = [int(r) for r, lab in zip(episode.support, episode.support_labels) if int(lab) == c]
        p = sum(z[r] for r in rows) / len(rows)
        protos.append(p / p.norm())
    return [
        max(range(n_way), key=lambda c: float(z[r] @ protos[c])) for r in episode.query.tolist()
    ]


def test_prototype_predictions_against_loop(clusters):
    x, y = clusters
    eps = few_shot_episodes(y, 5, 3, 4, 6, torch.Generator().manual_seed(1))
    for e in eps:
        pred = episode_predictions(x, e, "prototype")
        assert pred.dtype == torch.int64 and pred.shape == (20,)
        assert pred.tolist() == _loop_prototype_predictions(x, e)
        acc = float((pred == e.query_labels).double().mean())
        assert prototype_accuracy(x, e) == pytest.approx(acc)


def test_logistic_matches_sklearn_on_support_rows(clusters):
    from sklearn.linear_model import LogisticRegression

    x, y = clusters
    assert LOGISTIC_C == 1.0
    z = F.normalize(x.double(), dim=1)
    for k_shot in (1, 5):
        for e in few_shot_episodes(y, 5, k_shot, 6, 3, torch.Generator().manual_seed(k_shot)):
            clf = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000)
            clf.fit(z[e.support].numpy(), e.support_labels.numpy())
            want_p = clf.predict_proba(z[e.query].numpy())
            out = fit_predict_few_shot(x[e.support], e.support_labels, x[e.query], "logistic")
            torch.testing.assert_close(
                out.scores.double(), torch.from_numpy(want_p), atol=2e-4, rtol=0
            )
            agree = (out.labels.numpy() == want_p.argmax(1)).mean()
            assert agree == 1.0
            assert episode_predictions(x, e, "logistic").tolist() == out.labels.tolist()


def test_query_rows_are_not_used_for_fitting(clusters):
    x, y = clusters
    e = few_shot_episodes(y, 5, 2, 6, 1, torch.Generator().manual_seed(3))[0]
    for method in ("prototype", "logistic"):
        full = fit_predict_few_shot(x[e.support], e.support_labels, x[e.query], method)
        half = fit_predict_few_shot(x[e.support], e.support_labels, x[e.query[:7]], method)
        torch.testing.assert_close(half.scores, full.scores[:7])


def test_fit_predict_few_shot_labels_and_scores():
    support = torch.tensor([[1.0, 0.0], [2.0, 0.2], [0.0, 1.0], [-1.0, -1.0]])
    labels = torch.tensor([7, 7, -3, 40])
    query = torch.tensor([[0.0, 5.0], [3.0, 0.0], [-2.0, -1.9]])
    for method in ("prototype", "logistic"):
        out = fit_predict_few_shot(support, labels, query, method)
        assert out.classes.tolist() == [-3, 7, 40]
        assert out.scores.shape == (3, 3) and out.scores.dtype == torch.float32
        assert out.labels.tolist() == [-3, 7, 40]
        assert torch.equal(out.labels, out.classes[out.scores.argmax(1)])
    # prototype scores are cosine similarities to the normalised class means
    proto = fit_predict_few_shot(support, labels, query, "prototype").scores
    means = torch.stack(
        [
            F.normalize(support[2:3], dim=1).mean(0),
            F.normalize(support[:2], dim=1).mean(0),
            F.normalize(support[3:], dim=1).mean(0),
        ]
    )
    torch.testing.assert_close(proto, F.normalize(query, dim=1) @ F.normalize(means, dim=1).T)
    probs = fit_predict_few_shot(support, labels, query, "logistic").scores
    torch.testing.assert_close(probs.sum(1), torch.ones(3))
    with pytest.raises(ValueError, match=r"valid: \['prototype', 'logistic'\].*'logistic'"):
        fit_predict_few_shot(support, labels, query, "logstic")
    with pytest.raises(ValueError, match="at least 2 classes"):
        fit_predict_few_shot(support, torch.zeros(4, dtype=torch.long), query)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        fit_predict_few_shot(support, torch.zeros(3, dtype=torch.long), query)


def test_protocol_default_unchanged_and_methods(clusters):
    x, y = clusters
    options = {"n_way": 5, "shots": (1, 5), "queries": 5, "episodes": 20, "seed": 4}
    default = FewShotProtocol(**options).evaluate(x, y)
    assert list(default.metrics) == [
        "5way_1shot_accuracy",
        "5way_1shot_ci95",
        "5way_5shot_accuracy",
        "5way_5shot_ci95",
    ]
    eps = FewShotProtocol(**options).episodes_for(y)
    for k in (1, 5):
        accs = [prototype_accuracy(x, e) for e in eps[k]]
        assert default.metrics[f"5way_{k}shot_accuracy"] == pytest.approx(sum(accs) / len(accs))

    both = get_protocol("few_shot", methods=("logistic", "prototype"), **options).evaluate(
        x, y, baseline_features=x[:, :4], baseline_name="4 features"
    )
    assert both.details["methods"] == ["logistic", "prototype"]
    m = both.metrics
    assert list(m)[:6] == [
        "5way_1shot_accuracy",
        "5way_1shot_ci95",
        "5way_1shot_logistic_accuracy",
        "5way_1shot_logistic_ci95",
        "5way_1shot_prototype_accuracy",
        "5way_1shot_prototype_ci95",
    ]
    for k in (1, 5):
        key = f"5way_{k}shot"
        assert m[f"{key}_accuracy"] == m[f"{key}_logistic_accuracy"]
        assert m[f"{key}_ci95"] == m[f"{key}_logistic_ci95"]
        assert m[f"{key}_prototype_accuracy"] == default.metrics[f"{key}_accuracy"]
        assert m[f"{key}_prototype_ci95"] == default.metrics[f"{key}_ci95"]
        logistic = [
            float((episode_predictions(x, e, "logistic") == e.query_labels).double().mean())
            for e in eps[k]
        ]
        assert m[f"{key}_logistic_accuracy"] == pytest.approx(sum(logistic) / len(logistic))
        assert set(both.baseline) == set(m) == set(both.other_baselines["chance"])
        assert both.other_baselines["chance"][f"{key}_prototype_accuracy"] == 0.2
        assert 0.2 < m[f"{key}_prototype_accuracy"] <= 1.0
    lines = both.format().splitlines()
    assert len(lines) == 6  # one per accuracy, the CIs folded in
    assert lines[1].startswith("5-way 1-shot accuracy (logistic), test: 0.")
    assert " ± " in lines[1] and "(4 features 0." in lines[1] and "chance 0.200)" in lines[1]
    assert FewShotProtocol.interval_key("5way_1shot_logistic_accuracy") == (
        "5way_1shot_logistic_ci95"
    )
    assert FewShotProtocol.metric_label("5way_5shot_prototype_ci95", {}) == (
        "5-way 5-shot 95% CI half-width (prototype)"
    )
    with pytest.raises(ValueError, match="unknown few-shot method 'svm'"):
        FewShotProtocol(methods=("svm",))
    with pytest.raises(ValueError, match="distinct"):
        FewShotProtocol(methods=("prototype", "prototype"))


# ----------------------------------------------------------------------------- fine-tuning


@pytest.fixture(scope="module")
def support_images():
    """12 grayscale 16×16 images of 3 classes (a bright square in a class-specific corner)."""
    g = torch.Generator().manual_seed(5)
    images = (torch.rand(12, 1, 16, 16, generator=g) * 60).to(torch.uint8)
    labels = torch.arange(3).repeat(4)
    for i, c in enumerate(labels.tolist()):
        r, s = [(1, 1), (1, 9), (9, 5)][c]
        images[i, 0, r : r + 6, s : s + 6] = 230
    return images, labels


def _encoder() -> SmallCNN:
    torch.manual_seed(0)
    return SmallCNN(in_channels=1, width=8, stages=2)


def _support_loss(model, images, labels, views) -> float:
    v = views(images, seed=123)
    with torch.no_grad():
        z = model(torch.cat([v[0], v[1]]))
    return float(sup_con(z, labels.repeat(2), temperature=0.1))


def test_supcon_finetune(support_images):
    images, labels = support_images
    views = views_for("supcon", image_size=16, channels=1, flip=0.0)
    encoder = _encoder().eval()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    rng = torch.random.get_rng_state()
    history: list[float] = []
    tuned = supcon_finetune(encoder, images, labels, views, steps=30, history=history)
    assert torch.equal(torch.random.get_rng_state(), rng)  # the caller's RNG is untouched
    assert tuned is not encoder and not tuned.training and not encoder.training
    for k, v in encoder.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert any(not torch.equal(v, before[k]) for k, v in tuned.state_dict().items())
    assert len(history) == 30
    assert sum(history[-5:]) / 5 < 0.85 * sum(history[:5]) / 5, history
    # on fixed views of the support set, both models in eval mode
    assert _support_loss(tuned, images, labels, views) < 0.9 * _support_loss(
        encoder, images, labels, views
    )
    # same seed → same weights; another seed → others; mini-batches work
    again = supcon_finetune(encoder, images, labels, views, steps=30)
    for k, v in tuned.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    other = supcon_finetune(encoder, images, labels, views, steps=3, seed=1)
    short = supcon_finetune(encoder, images, labels, views, steps=3, seed=0)
    assert any(not torch.equal(v, short.state_dict()[k]) for k, v in other.state_dict().items())
    batched = supcon_finetune(encoder, images, labels, views, steps=3, batch_size=6, seed=0)
    assert not batched.training


def test_supcon_finetune_errors(support_images):
    images, labels = support_images
    views = views_for("supcon", image_size=16, channels=1, flip=0.0)
    with pytest.raises(ValueError, match="at least two classes"):
        supcon_finetune(_encoder(), images, torch.zeros(12, dtype=torch.long), views, steps=1)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        supcon_finetune(_encoder(), images[0], labels, views, steps=1)
    with pytest.raises(ValueError, match="two views"):
        supcon_finetune(_encoder(), images, labels, lambda x: [x.float()], steps=1)
