# --- Where and what -----------------------------------------------------------

variable "region" {
  description = "AWS region of the cluster and everything else here, e.g. us-east-1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$", var.region))
    error_message = "region must be an AWS region code such as us-east-1 or eu-central-2."
  }
}

variable "cluster_name" {
  description = "EKS cluster name; also the prefix of the VPC, IAM role, KMS alias and bucket names."
  type        = string
  default     = "aistack"

  # An RFC 1123 label, at most 28 characters: the EKS module names the cluster
  # role with the prefix "<name>-cluster-", and IAM caps name prefixes at 38.
  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,26}[a-z0-9])?$", var.cluster_name))
    error_message = "cluster_name must be 1-28 lowercase letters, digits or '-', starting and ending with a letter or digit."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes <major>.<minor> version of the control plane and node groups."
  type        = string
  default     = "1.35"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.35 (major.minor, no patch)."
  }
}

variable "tags" {
  description = "Extra tags for every resource (merged over Project, Cluster and ManagedBy)."
  type        = map(string)
  default     = {}
}

# --- Network -----------------------------------------------------------------

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC; /16 to /18 (network.tf carves the subnets out of it)."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && can(regex("^[0-9.]+/(1[6-8])$", var.vpc_cidr))
    error_message = "vpc_cidr must be an IPv4 CIDR with a prefix length from /16 to /18."
  }
}

variable "az_count" {
  description = "Number of availability zones to spread subnets and nodes over (EKS needs at least 2)."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4 && floor(var.az_count) == var.az_count
    error_message = "az_count must be a whole number from 2 to 4."
  }
}

variable "single_nat_gateway" {
  description = "One shared NAT gateway (cheaper) instead of one per availability zone (survives a zone outage)."
  type        = bool
  default     = true
}

# --- Access to the Kubernetes API --------------------------------------------

variable "endpoint_public_access" {
  description = "Whether the Kubernetes API endpoint is reachable from the internet (from endpoint_public_access_cidrs only)."
  type        = bool
  default     = true
}

variable "endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint, e.g. your office or VPN egress. Narrow it: the default is the whole internet."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for c in var.endpoint_public_access_cidrs : can(cidrhost(c, 0))])
    error_message = "endpoint_public_access_cidrs must contain only valid CIDR blocks."
  }

  validation {
    condition     = !var.endpoint_public_access || length(var.endpoint_public_access_cidrs) > 0
    error_message = "endpoint_public_access_cidrs must not be empty while endpoint_public_access is true."
  }
}

variable "admin_role_arn" {
  description = "IAM role ARN granted cluster-admin (AmazonEKSClusterAdminPolicy) through an EKS access entry."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.admin_role_arn))
    error_message = "admin_role_arn must be an IAM role ARN, arn:aws:iam::<12-digit account>:role/<name>."
  }
}

variable "enable_cluster_creator_admin_permissions" {
  description = "Also make the identity running Terraform a cluster admin. Leave false when that identity is admin_role_arn itself: EKS refuses two access entries for one principal."
  type        = bool
  default     = false
}

# --- Node groups -------------------------------------------------------------

variable "cpu_instance_types" {
  description = "Instance types of the CPU node group (Airflow, agents, add-ons); the first available one is used."
  type        = list(string)
  default     = ["m6i.xlarge"]

  validation {
    condition     = length(var.cpu_instance_types) > 0 && alltrue([for t in var.cpu_instance_types : can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", t))])
    error_message = "cpu_instance_types must list at least one instance type such as m6i.xlarge."
  }
}

variable "cpu_node_count" {
  description = "Minimum, desired and maximum number of CPU nodes. EKS only uses desired at creation; later changes come from an autoscaler or the console."
  type = object({
    min     = number
    desired = number
    max     = number
  })
  default = { min = 2, desired = 2, max = 4 }

  validation {
    condition     = var.cpu_node_count.min >= 1 && var.cpu_node_count.min <= var.cpu_node_count.desired && var.cpu_node_count.desired <= var.cpu_node_count.max
    error_message = "cpu_node_count needs 1 <= min <= desired <= max: the cluster add-ons need at least one CPU node."
  }
}

variable "gpu_instance_types" {
  description = "x86_64 NVIDIA instance types of the GPU node group (Ollama servers and model builds), e.g. g5.xlarge or g6.xlarge."
  type        = list(string)
  default     = ["g5.xlarge"]

  validation {
    condition     = length(var.gpu_instance_types) > 0 && alltrue([for t in var.gpu_instance_types : can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", t))])
    error_message = "gpu_instance_types must list at least one instance type such as g5.xlarge."
  }
}

variable "gpu_capacity_type" {
  description = "ON_DEMAND or SPOT for the GPU nodes. SPOT is cheaper but a reclaimed node interrupts running builds and inference."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.gpu_capacity_type)
    error_message = "gpu_capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "gpu_node_count" {
  description = "Minimum, desired and maximum number of GPU nodes; min 0 allows scaling the GPU group to zero when idle."
  type = object({
    min     = number
    desired = number
    max     = number
  })
  default = { min = 0, desired = 1, max = 2 }

  validation {
    condition     = var.gpu_node_count.min >= 0 && var.gpu_node_count.min <= var.gpu_node_count.desired && var.gpu_node_count.desired <= var.gpu_node_count.max && var.gpu_node_count.max >= 1
    error_message = "gpu_node_count needs 0 <= min <= desired <= max and max >= 1."
  }
}

variable "gpu_disk_size_gib" {
  description = "Root volume size of each GPU node in GiB: container images, and base models pulled by builds."
  type        = number
  default     = 200

  validation {
    condition     = var.gpu_disk_size_gib >= 50
    error_message = "gpu_disk_size_gib must be at least 50: the NVIDIA AMI and one base model alone take tens of GiB."
  }
}

# --- Outputs bucket ----------------------------------------------------------

variable "outputs_bucket_name" {
  description = "Name of the S3 bucket for pipeline outputs; null derives <cluster_name>-outputs-<account id>."
  type        = string
  default     = null

  validation {
    condition     = var.outputs_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.outputs_bucket_name))
    error_message = "outputs_bucket_name must be 3-63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit."
  }
}

variable "outputs_noncurrent_version_days" {
  description = "Days a replaced or deleted output version is kept before it expires."
  type        = number
  default     = 90

  validation {
    condition     = var.outputs_noncurrent_version_days >= 1
    error_message = "outputs_noncurrent_version_days must be at least 1."
  }
}

# --- Workload identities -----------------------------------------------------

variable "airflow_service_accounts" {
  description = "Airflow service accounts (namespace/name) that get the outputs-bucket role. Add the worker's if it differs."
  type        = list(string)
  default     = ["airflow/aistack-airflow"]

  validation {
    condition     = length(var.airflow_service_accounts) > 0 && alltrue([for sa in var.airflow_service_accounts : can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?/[a-z0-9]([a-z0-9.-]*[a-z0-9])?$", sa))])
    error_message = "airflow_service_accounts must list namespace/name pairs such as airflow/aistack-airflow."
  }
}

variable "model_builder_service_account" {
  description = "Service account (namespace/name) of model build pods, which gets the model-registry role."
  type        = string
  default     = "aistack-builds/aistack-model-builder"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?/[a-z0-9]([a-z0-9.-]*[a-z0-9])?$", var.model_builder_service_account))
    error_message = "model_builder_service_account must be namespace/name, such as aistack-builds/aistack-model-builder."
  }
}

# --- Model registry ----------------------------------------------------------

variable "model_registry_namespace" {
  description = "ECR repository namespace of the model registry: the one path segment between host and model in an Ollama name."
  type        = string
  default     = "aistack-models"

  validation {
    condition     = can(regex("^[a-z0-9]+([._-][a-z0-9]+)*$", var.model_registry_namespace))
    error_message = "model_registry_namespace must be a single segment of lowercase letters and digits, separated by '.', '_' or '-' (no '/')."
  }
}

variable "model_names" {
  description = "OllamaModelDefinition names (metadata.name) that get a repository in the model registry."
  type        = list(string)
  default     = ["analyzer-model", "chat-model", "classifier-model", "qa-model", "summarizer-model"]

  validation {
    condition     = alltrue([for n in var.model_names : can(regex("^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$", n))])
    error_message = "model_names must be Kubernetes resource names (lowercase letters, digits, '.' and '-')."
  }
}
