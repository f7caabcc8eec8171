"""A germinate-ai workflow ported to germinate_nb by rewriting only its imports.

Written like the seed's ``workflows/metagpt`` package (states with ``Depends``-injected chain
factories, conditions and transitions, a workflow), top to bottom like notebook cells. The
imports were::

    from germinate_ai.core import State, Workflow
    from germinate_ai.core.tasks import TaskDefinition, TaskExecutor, TaskRegistry
    from germinate_ai.utils.di import Depends

Tests run it with ``runpy.run_path`` so each test declares it in its own registry. Three
states (ideate -> review -> publish, review looping back to ideate), async conditions, one
with a ``Depends``, dotted namespaces (keyword and positional), and a custom executor whose
input parameter is not called ``input``.
"""

import asyncio

from pydantic import BaseModel

from germinate_nb import Depends, State, TaskDefinition, TaskExecutor, TaskRegistry, Workflow

FACTORY_CALLS = []
"""One entry per call of a dependency factory, to check they are resolved once per run."""


# Toolbox: a stand-in for the seed's LangChain prompt chains
# ------------------------------------------------------------


class PromptChain:
    def __init__(self, prompt):
        self.prompt = prompt

    def invoke(self, text):
        return f"[{self.prompt}] {text}"

    async def ainvoke(self, text):
        await asyncio.sleep(0)
        return self.invoke(text)


def lc_prompt_chain_factory():
    FACTORY_CALLS.append("chain")
    return PromptChain


def grader_factory(threshold=1):
    FACTORY_CALLS.append("grader")
    return lambda score: score >= threshold


# Ideate
# ------

ideate_state = State(name="ideate")


class PMInputSchema(BaseModel):
    product_requirements: str
    revision: int = 0


class PRDDocument(BaseModel):
    product_requirements: str
    prd: str
    revision: int


class Critique(BaseModel):
    critique: str


@ideate_state.task(namespace="agents.ideate")
def pm_task(
    input: PMInputSchema,
    chain_factory=Depends(lc_prompt_chain_factory),
) -> PRDDocument:
    chain = chain_factory(prompt="PRD")
    return PRDDocument(
        product_requirements=input.product_requirements,
        prd=chain.invoke(input.product_requirements),
        revision=input.revision + 1,
    )


@ideate_state.task("agents.ideate")
async def critic_task(
    input: PRDDocument,
    chain_factory=Depends(lc_prompt_chain_factory),
) -> Critique:
    chain = chain_factory(prompt="critic")
    return Critique(critique=await chain.ainvoke(input.prd))


pm_task >> critic_task


@ideate_state.task(namespace="agents.ideate")
def merge_task(input: PRDDocument) -> PRDDocument:
    return input


pm_task >> merge_task


# Review
# ------

review_state = State(name="review")


class Review(BaseModel):
    score: int


@review_state.task(namespace="agents.review")
async def score_task(input: PRDDocument) -> Review:
    await asyncio.sleep(0)
    return Review(score=input.revision)


@review_state.task(namespace="agents.review")
def carry_task(input: PRDDocument) -> PRDDocument:
    return input


# Publish: a custom executor, registered by hand as the seed allowed
# -------------------------------------------------------------------

publish_state = State(name="publish")


class ReleaseInput(BaseModel):
    prd: str
    revision: int


class Release(BaseModel):
    document: str


def release(data: ReleaseInput) -> Release:
    return Release(document=f"v{data.revision}: {data.prd}")


release_executor = TaskExecutor(
    name="release_executor",
    callable=release,
    input_schema=ReleaseInput,
    output_schema=Release,
    namespace="custom_tasks",
)
TaskRegistry.register(namespace="custom_tasks", name="release_executor", executor=release_executor)
publish_state.add_task(TaskDefinition(name="release", executor=release_executor))


# Workflow
# --------

workflow = Workflow(name="product_pipeline")
workflow.add_state(ideate_state, initial_state=True)
workflow.add_state(review_state)
workflow.add_state(publish_state)


@ideate_state.condition()
async def idea_is_ready(input) -> bool:
    await asyncio.sleep(0)
    return bool(input.critique)


@review_state.condition()
async def needs_rework(input: Review, grader=Depends(grader_factory, 2)) -> bool:
    await asyncio.sleep(0)
    return not grader(input.score)


@review_state.condition()
def approved(input) -> bool:
    return True


# Note: The parenthesis is necessary!
(ideate_state & idea_is_ready) >> review_state
(review_state & needs_rework) >> ideate_state
(review_state & approved) >> publish_state
