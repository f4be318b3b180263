"""A toy IMP variant and a toy structure method, each a subclass of ticketbench's base."""

from ticketbench.masks import keep_highest
from ticketbench.methods.imp import FollowsBudget
from ticketbench.methods.structure.stage import Refill


class ToyPrune(FollowsBudget):
    help = "toy: the rewind point's largest weights, to --reference's kept count in each round"

    def mask(self, x):
        start = x.pre.rewind_state(x.imp.rewind)
        return keep_highest({n: start[n].abs() for n in x.weights}, self.budget(x)), {"toy": True}


class ToyRefill(Refill):
    """Refill that re-activates half of the channels it empties."""

    def rho(self, st):
        return 0.5
