# slime's SFT rollout function (owned by its author).
