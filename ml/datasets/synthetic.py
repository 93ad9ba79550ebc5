"""Synthetic stores for tests and benches (deterministic for a seed).

* :func:`synthetic_store` -- an e-commerce store: power-law item popularity, shoppers with
  favourite categories, sessions of views with some carts and purchases.
* :func:`grocery_store` -- repeat purchasing: each shopper restocks personal staples on their
  own cycles and now and then tries something new.
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
    n_users: int = 800,
    n_items: int = 400,
    *,
    days: int = 180,
    n_categories: int = 20,
    seed: int = 0,
) -> tuple[Interactions, Catalog]:
    """Purchase events of shoppers restocking staples.

    Each shopper has 6-18 staples (popular items weigh more) with a personal restock interval
    (item base 4-30 days times a shopper factor), shops every 2-8 days and buys every staple
    that is due (with noise, and 15% of the time not), plus about one new item from their
    favourite categories; now and then a staple is swapped for a new one. Everything in one
    trip shares a timestamp window of a few minutes and an order id (``g<shopper>-o<trip>``).
    """
    rng = np.random.default_rng(seed)
    catalog, item_cat, pop = _catalog(rng, n_items, n_categories, 365)
    p_item = pop / pop.sum()
    base_interval = rng.uniform(4, 30, n_items)
    users, items, stamps, orders = [], [], [], []
    for u in range(n_users):
        n_staples = int(rng.integers(6, 19))
        staples = rng.choice(n_items, n_staples, replace=False, p=p_item)
        interval = base_interval[staples] * rng.uniform(0.6, 1.6)
        last = -rng.uniform(0, interval)  # days since bought before the window opened
        fav = rng.choice(n_categories, 2, replace=False)
        explore_pool = np.flatnonzero(np.isin(item_cat, fav))
        trip_gap = rng.uniform(2, 8)
        t = rng.uniform(0, trip_gap)
        trip = 0
        while t < days:
            due = (t - last) >= interval * rng.uniform(0.7, 1.4, n_staples)
            due &= rng.random(n_staples) < 0.85  # forgot it, or bought it elsewhere
            bought = list(staples[due])
            last[due] = t
            if rng.random() < 0.03 and len(explore_pool):
                # Tastes drift: a staple is replaced by something from a favourite category.
                j = int(rng.integers(n_staples))
                staples[j] = rng.choice(explore_pool)
                interval[j] = base_interval[staples[j]] * rng.uniform(0.6, 1.6)
                last[j] = t - interval[j]
            n_new = int(rng.poisson(1.0))
            if n_new and len(explore_pool):
                w = pop[explore_pool] / pop[explore_pool].sum()
                k = min(n_new, len(explore_pool))
                bought += list(rng.choice(explore_pool, k, replace=False, p=w))
            ts = EPOCH + int(t * DAY)
            for j, item in enumerate(bought):
                users.append(u)
                items.append(int(item))
                stamps.append(ts + 30 * j)
                orders.append(f"g{u}-o{trip}")
            trip += 1
            t += trip_gap * rng.uniform(0.7, 1.3)
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
