"""Synthetic stores for tests and benches (deterministic for a seed).

* :func:`synthetic_store` -- an e-commerce store: power-law item popularity, shoppers with
  favourite categories, sessions of views with some carts and purchases.
* :func:`grocery_store` -- baskets with Instacart-like statistics: shoppers restock their own
  repertoire on personal cycles, at their own rhythm, and try new things from a long tail.
"""

from __future__ import annotations

import numpy as np

from ml.data import DAY, Catalog, Interactions

EPOCH = 1_700_000_000  # an arbitrary fixed "start of data" (Nov 2023)


def _catalog(
    rng: np.random.Generator, n_items: int, n_cats: int, created_span_days: int
) -> tuple[Catalog, np.ndarray, np.ndarray]:
    """Catalog plus each item's category and within-category popularity weight."""
    item_cat = np.sort(rng.integers(0, n_cats, n_items))
    pop = rng.pareto(1.1, n_items) + 0.05
    words = np.array(
        [
            "fresh",
            "organic",
            "classic",
            "premium",
            "light",
            "dark",
            "sweet",
            "spicy",
            "crunchy",
            "soft",
            "large",
            "small",
            "family",
            "value",
            "deluxe",
            "mini",
            "extra",
            "smooth",
            "rich",
            "natural",
        ]
    )
    titles = [f"{' '.join(rng.choice(words, 2))} item {i} c{item_cat[i]}" for i in range(n_items)]
    descriptions = [
        f"A {words[i % len(words)]} product from category {item_cat[i]}" for i in range(n_items)
    ]
    created = EPOCH - rng.integers(0, created_span_days * DAY, n_items)
    catalog = Catalog(
        item_ids=np.array([f"i{i}" for i in range(n_items)], dtype=object),
        titles=titles,
        descriptions=descriptions,
        categories=[[f"cat{c}"] for c in item_cat],
        prices=np.round(rng.lognormal(2.5, 0.8, n_items), 2),
        created_at=created.astype(np.int64),
        in_stock=rng.random(n_items) > 0.05,
    )
    return catalog, item_cat, pop


def synthetic_store(
    n_users: int = 50_000,
    n_items: int = 10_000,
    n_interactions: int = 1_000_000,
    *,
    n_categories: int = 60,
    days: int = 180,
    seed: int = 0,
) -> tuple[Interactions, Catalog]:
    """E-commerce events (view/click/add_to_cart/purchase), about ``n_interactions`` of them.

    Sessions: a shopper (heavy-tailed activity) browses one category (a favourite 80% of the
    time), viewing popular items of it more often; some views lead to a cart, some carts to a
    purchase. Vectorised; ~1 s per million events.
    """
    rng = np.random.default_rng(seed)
    catalog, item_cat, pop = _catalog(rng, n_items, n_categories, 365)
    order = np.argsort(item_cat, kind="stable")
    cat_start = np.searchsorted(item_cat[order], np.arange(n_categories + 1))
    # Per-category cumulative popularity, offset by the category id so one searchsorted
    # samples inside any category.
    cum = np.zeros(n_items)
    for c in range(n_categories):
        lo, hi = cat_start[c], cat_start[c + 1]
        if hi > lo:
            w = pop[order[lo:hi]]
            cum[lo:hi] = c + np.cumsum(w) / w.sum()
    cat_weight = np.bincount(item_cat, weights=pop, minlength=n_categories) + 1e-9
    cat_weight /= cat_weight.sum()

    activity = rng.lognormal(0.0, 1.0, n_users)
    activity /= activity.sum()
    favourites = rng.choice(n_categories, size=(n_users, 3), p=cat_weight)
    start = rng.integers(0, days * DAY // 2, n_users)
    span = rng.integers(DAY, days * DAY, n_users)
    span = np.minimum(span, days * DAY - start)

    n_sessions = max(1, n_interactions // 4)
    s_user = rng.choice(n_users, n_sessions, p=activity)
    s_time = EPOCH + start[s_user] + (rng.random(n_sessions) * span[s_user]).astype(np.int64)
    fav = favourites[s_user, rng.integers(0, 3, n_sessions)]
    s_cat = np.where(
        rng.random(n_sessions) < 0.8, fav, rng.choice(n_categories, n_sessions, p=cat_weight)
    )
    s_len = np.minimum(1 + rng.geometric(0.3, n_sessions), 12)
    ev_session = np.repeat(np.arange(n_sessions), s_len)
    ev_session = ev_session[:n_interactions]
    n_ev = len(ev_session)
    ev_cat = s_cat[ev_session]
    pos = np.searchsorted(cum, ev_cat + rng.random(n_ev) * 0.999999)
    pos = np.clip(pos, cat_start[ev_cat], np.maximum(cat_start[ev_cat + 1] - 1, cat_start[ev_cat]))
    ev_item = order[np.minimum(pos, n_items - 1)]
    step = np.cumsum(rng.integers(20, 180, n_ev))
    first_of_session = np.searchsorted(ev_session, ev_session)
    ev_time = s_time[ev_session] + step - step[first_of_session]
    r = rng.random(n_ev)
    types = np.where(
        r < 0.78, "view", np.where(r < 0.84, "click", np.where(r < 0.94, "add_to_cart", "purchase"))
    )
    return (
        Interactions(
            user_ids=np.char.add("u", s_user[ev_session].astype(str)).astype(object),
            item_ids=np.char.add("i", ev_item.astype(str)).astype(object),
            event_types=types.astype(object),
            values=np.full(n_ev, np.nan),
            timestamps=ev_time.astype(np.int64),
        ),
        catalog,
    )


def grocery_store(
    n_users: int = 2_000,
    n_items: int = 10_000,
    *,
    n_categories: int = 100,
    max_orders: int = 100,
    seed: int = 0,
) -> tuple[Interactions, Catalog]:
    """Purchase events of a grocery store, one order id per basket, with Instacart-like statistics.

    Shaped after the public Instacart orders (about 10 lines per basket, 55-60 % of lines
    reorders, 4-100 orders per shopper, 1-30 days between orders): item popularity is Zipf-like
    over the whole catalog (a long tail few shoppers ever buy); each shopper has a personal
    rhythm (mean gap between orders, drawn once, with day-to-day noise), a personal basket size
    and favourite aisles. Items they try may join their repertoire (more likely for staples);
    a repertoire item comes back on a personal cycle (the item's typical cycle times the
    shopper's) with a Weibull hazard, so it is more likely the longer it has not been bought, and
    is now and then dropped for good. The rest of each basket is exploration from the
    shopper's aisles and the store's popularity. Histories end at different times in the last
    60 days of the data. Order ids are ``g<shopper>-o<n>``; the lines of an order are seconds
    apart. Deterministic for a seed; about 1 s per 1,000 shoppers.
    """
    rng = np.random.default_rng(seed)
    catalog, item_cat, _ = _catalog(rng, n_items, n_categories, 365)
    # Zipf-like popularity, ranks shuffled over the catalog.
    zipf = 1.0 / (rng.permutation(n_items) + 10.0) ** 1.05
    # Popular items are more often staples and restocked faster.
    pop_rank = np.argsort(np.argsort(-zipf)) / max(n_items - 1, 1)
    adopt = np.clip(rng.beta(2.0, 2.5, n_items) * (1.3 - 0.8 * pop_rank), 0.02, 0.95)
    cycle = np.clip(rng.lognormal(np.log(10.0), 0.55, n_items) * (0.8 + 0.6 * pop_rank), 3, 90)

    last_day = 2 * 365
    users, items, stamps, orders = [], [], [], []
    for u in range(n_users):
        n_orders = int(np.clip(round(3 + rng.lognormal(np.log(9.0), 0.85)), 4, max_orders))
        rhythm = rng.uniform(3.0, 24.0)  # the shopper's usual days between orders
        gaps = np.clip(np.round(rhythm * rng.lognormal(0.0, 0.35, n_orders - 1)), 1, 30)
        days = np.concatenate([[0.0], np.cumsum(gaps)])
        days += last_day - rng.uniform(0, 60) - days[-1]
        hour = rng.uniform(8, 20)
        size_mean = rng.lognormal(np.log(8.7), 0.5)
        # Exploration: store popularity tilted to a few favourite aisles.
        fav = rng.choice(n_categories, 4, replace=False)
        tilt = np.ones(n_categories)
        tilt[fav] = rng.uniform(4.0, 12.0, 4)
        explore = zipf * tilt[item_cat]
        explore_cum = np.cumsum(explore / explore.sum())
        speed = rng.lognormal(0.0, 0.3)  # the shopper restocks faster or slower than most
        novelty = rng.beta(2.0, 2.8)  # share of a basket left to trying things
        rep_items = np.zeros(0, dtype=np.int64)
        rep_cycle = np.zeros(0)
        rep_last = np.zeros(0)
        rep_affinity = np.zeros(0)
        for n, day in enumerate(days.tolist()):
            size = 1 + int(rng.poisson(max(size_mean - 1.0, 0.1)))
            since = day - rep_last
            hazard = 1.0 - np.exp(-((since / rep_cycle) ** 2.5)) if len(rep_items) else since
            take = rng.random(len(rep_items)) < rep_affinity * hazard
            again = rep_items[take]
            n_new = int(rng.binomial(size, novelty))
            if len(again) > size - n_new:
                again = rng.choice(again, size - n_new, replace=False)
            n_new = size - len(again)
            new = np.searchsorted(explore_cum, rng.random(n_new) * explore_cum[-1])
            new = np.minimum(new, n_items - 1)
            basket = list(dict.fromkeys(again.tolist() + new.tolist()))
            # Restocked items and first tries of staples join the repertoire; a few leave it.
            rep_last[np.isin(rep_items, basket)] = day
            known = set(rep_items.tolist())
            fresh = [i for i in dict.fromkeys(new.tolist()) if i not in known]
            fresh = [i for i in fresh if rng.random() < adopt[i]]
            if fresh:
                f = np.array(fresh, dtype=np.int64)
                rep_items = np.concatenate([rep_items, f])
                rep_cycle = np.concatenate(
                    [rep_cycle, cycle[f] * speed * rng.lognormal(0.0, 0.25, len(f))]
                )
                rep_last = np.concatenate([rep_last, np.full(len(f), day)])
                rep_affinity = np.concatenate([rep_affinity, rng.uniform(0.5, 0.98, len(f))])
            stay = rng.random(len(rep_items)) > 0.015
            rep_items, rep_cycle = rep_items[stay], rep_cycle[stay]
            rep_last, rep_affinity = rep_last[stay], rep_affinity[stay]
            ts = EPOCH + int((day + hour / 24 + rng.normal(0, 1.5) / 24) * DAY)
            for j, item in enumerate(basket):
                users.append(u)
                items.append(item)
                stamps.append(ts + 20 * j)
                orders.append(f"g{u}-o{n}")
    n = len(users)
    return (
        Interactions(
            user_ids=np.array([f"g{u}" for u in users], dtype=object),
            item_ids=np.array([f"i{i}" for i in items], dtype=object),
            event_types=np.full(n, "purchase", dtype=object),
            values=np.full(n, np.nan),
            timestamps=np.array(stamps, dtype=np.int64),
            order_ids=np.array(orders, dtype=object),
        ),
        catalog,
    )
